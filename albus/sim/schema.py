"""Object types the simulator knows: field whitelists, enums, required fields, references and model names.

A small spec language describes each type so that one walker can validate a body (unknown field, wrong
type, bad enum, missing required field → 400) and find every reference in it at any depth. The
reference field → object type mapping is explicit per field; nothing is guessed from a field name.
Field lists follow the controller's published schema (API 30.2.1) for the fields albus and AKO use;
types outside albus's use (`OPEN_TYPES`) accept any field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True)
class Enum:
    values: frozenset[str]


@dataclass(frozen=True)
class Ref:
    type: str
    many: bool = False


@dataclass(frozen=True)
class Obj:
    fields: dict[str, Spec]
    required: tuple[str, ...] = ()
    # open objects accept unknown keys (sub-structures albus never sends and we do not model)
    open: bool = False


@dataclass(frozen=True)
class ListOf:
    item: Spec


# "str" | "int" | "num" | "bool" | "any"
Spec = Union[str, Enum, Ref, Obj, ListOf]  # noqa: UP007 (a forward-referencing alias)


def E(*values: str) -> Enum:
    return Enum(frozenset(values))


def O(required: tuple[str, ...] = (), open: bool = False, **fields: Spec) -> Obj:  # noqa: E743
    return Obj(fields, required, open)


def L(item: Spec) -> ListOf:
    return ListOf(item)


ANY = O(open=True)

IP_ADDR = O(("addr", "type"), addr="str", type=E("V4", "V6", "DNS"))
IP_PREFIX = O(("ip_addr", "mask"), ip_addr=IP_ADDR, mask="int")
IP_RANGE = O(("begin", "end"), begin=IP_ADDR, end=IP_ADDR)
MARKER = O(("key",), key="str", values=L("str"))
KEY_VALUE = O(("key",), key="str", value="str")
OPER_STATUS_ENUM = E(
    "OPER_UP", "OPER_DOWN", "OPER_CREATING", "OPER_RESOURCES", "OPER_INACTIVE", "OPER_DISABLED", "OPER_UNUSED",
    "OPER_UNKNOWN", "OPER_PROCESSING", "OPER_INITIALIZING", "OPER_ERROR_DISABLED", "OPER_AWAIT_MANUAL_PLACEMENT",
    "OPER_UPGRADING", "OPER_SE_PROCESSING", "OPER_PARTITIONED", "OPER_DISABLING", "OPER_FAILED", "OPER_UNAVAIL",
    "OPER_AGGR",
)

COMMON: dict[str, Spec] = {
    "name": "str",
    "uuid": "str",
    "url": "str",
    "_last_modified": "str",
    "tenant_ref": Ref("tenant"),
    "description": "str",
    "markers": L(MARKER),
    "configpb_attributes": ANY,
}


@dataclass(frozen=True)
class TypeSpec:
    name: str  # the URL type, e.g. "virtualservice"
    model: str  # the model name used in messages and the macro API, e.g. "VirtualService"
    body: Obj
    # names unique per (tenant, type, cloud) rather than (tenant, type): the controller keeps one
    # `global` VRF and one `Default-Group` per cloud
    cloud_scoped: bool = False
    has_cloud: bool = False
    extra_required: tuple[str, ...] = field(default=())


def _t(name: str, model: str, required: tuple[str, ...] = ("name",), *, cloud_scoped: bool = False,
       open: bool = False, **fields: Spec) -> TypeSpec:
    allf = dict(COMMON)
    allf.update(fields)
    return TypeSpec(name, model, Obj(allf, required, open), cloud_scoped, "cloud_ref" in fields)


HM_TYPES = E(
    "HEALTH_MONITOR_PING", "HEALTH_MONITOR_TCP", "HEALTH_MONITOR_HTTP", "HEALTH_MONITOR_HTTPS",
    "HEALTH_MONITOR_EXTERNAL", "HEALTH_MONITOR_UDP", "HEALTH_MONITOR_DNS", "HEALTH_MONITOR_GSLB",
    "HEALTH_MONITOR_SIP", "HEALTH_MONITOR_RADIUS", "HEALTH_MONITOR_SMTP", "HEALTH_MONITOR_SMTPS",
    "HEALTH_MONITOR_POP3", "HEALTH_MONITOR_POP3S", "HEALTH_MONITOR_IMAP", "HEALTH_MONITOR_IMAPS",
    "HEALTH_MONITOR_FTP", "HEALTH_MONITOR_FTPS", "HEALTH_MONITOR_LDAP", "HEALTH_MONITOR_LDAPS",
    "HEALTH_MONITOR_SCTP", "HEALTH_MONITOR_SERVER_SCORECARD",
)
LB_ALGOS = E(
    "LB_ALGORITHM_LEAST_CONNECTIONS", "LB_ALGORITHM_ROUND_ROBIN", "LB_ALGORITHM_FASTEST_RESPONSE",
    "LB_ALGORITHM_CONSISTENT_HASH", "LB_ALGORITHM_LEAST_LOAD", "LB_ALGORITHM_FEWEST_SERVERS", "LB_ALGORITHM_RANDOM",
    "LB_ALGORITHM_FEWEST_TASKS", "LB_ALGORITHM_NEAREST_SERVER", "LB_ALGORITHM_CORE_AFFINITY", "LB_ALGORITHM_TOPOLOGY",
)
CLOUD_VTYPES = E(
    "CLOUD_NONE", "CLOUD_VCENTER", "CLOUD_OPENSTACK", "CLOUD_AWS", "CLOUD_VCA", "CLOUD_APIC", "CLOUD_MESOS",
    "CLOUD_LINUXSERVER", "CLOUD_DOCKER_UCP", "CLOUD_RANCHER", "CLOUD_OSHIFT_K8S", "CLOUD_AZURE", "CLOUD_GCP",
    "CLOUD_NSXT", "CLOUD_VMC", "CLOUD_OCI", "CLOUD_TENCENT",
)
MATCH_CASE = E("SENSITIVE", "INSENSITIVE")

SERVER = O(
    ("ip",),
    ip=IP_ADDR, port="int", enabled="bool", ratio="int", hostname="str", description="str", external_uuid="str",
    nw_ref=Ref("network"), resolve_server_by_dns="bool", verify_network="bool", static="bool",
    rewrite_host_header="bool", prst_hdr_val="str", vm_ref="str", availability_zone="str", mac_address="str",
    preference_order="int", server_node="str", autoscaling_group_name="str", location=ANY, discovered_networks=ANY,
)

SERVICE = O(
    ("port",),
    port="int", port_range_end="int", enable_ssl="bool", enable_http2="bool", is_active_ftp_data_port="bool",
    horizon_internal_ports="bool", override_network_profile_ref=Ref("networkprofile"),
    override_application_profile_ref=Ref("applicationprofile"),
)

VIP = O(
    ("vip_id",),
    vip_id="str", ip_address=IP_ADDR, ip6_address=IP_ADDR, auto_allocate_ip="bool",
    auto_allocate_ip_type=E("V4_ONLY", "V6_ONLY", "V4_V6"), enabled="bool", avi_allocated_vip="bool",
    avi_allocated_fip="bool", auto_allocate_floating_ip="bool", floating_ip=IP_ADDR, floating_ip6=IP_ADDR,
    prefix_length="int", network_ref=Ref("network"), subnet=IP_PREFIX, subnet6=IP_PREFIX, subnet_uuid="str",
    subnet6_uuid="str", port_uuid="str", placement_networks=L(O(network_ref=Ref("network"), subnet=IP_PREFIX,
                                                                 subnet6=IP_PREFIX)),
    ipam_network_subnet=O(network_ref=Ref("network"), subnet=IP_PREFIX, subnet6=IP_PREFIX, subnet_uuid="str",
                          subnet6_uuid="str"),
    availability_zone="str", discovered_networks=ANY,
)

DNS_INFO = O(
    fqdn="str", type=E("DNS_RECORD_A", "DNS_RECORD_AAAA", "DNS_RECORD_CNAME", "DNS_RECORD_OTHER", "DNS_RECORD_NS",
                       "DNS_RECORD_SRV", "DNS_RECORD_MX", "DNS_RECORD_TXT", "DNS_RECORD_ANY", "DNS_RECORD_SOA",
                       "DNS_RECORD_PTR", "DNS_RECORD_RRSIG", "DNS_RECORD_DNSKEY", "DNS_RECORD_DS",
                       "DNS_RECORD_CAA", "DNS_RECORD_OPT"),
    ttl="int", algorithm=E("DNS_RECORD_RESPONSE_ROUND_ROBIN", "DNS_RECORD_RESPONSE_CONSISTENT_HASH"),
    num_records_in_response="int", metadata="str", cname=ANY,
)

BGP_PEER = O(
    ("remote_as",),
    remote_as="int", peer_ip=IP_ADDR, peer_ip6=IP_ADDR, subnet=IP_PREFIX, subnet6=IP_PREFIX,
    network_ref=Ref("network"), label="str", bfd="bool", advertise_vip="bool", advertise_snat_ip="bool",
    md5_secret="str", ebgp_multihop="int", connect_timer="int", keepalive_interval="int", hold_time="int",
    shutdown="bool", advertisement_interval="int", local_as="int",
)

HTTP_RULE = O(
    ("name", "index", "enable"),
    name="str", index="int", enable="bool", log="bool", all_headers="bool",
    match=O(
        open=True,
        host_hdr=O(("match_criteria",), match_criteria=E(
            "HDR_EXISTS", "HDR_DOES_NOT_EXIST", "HDR_BEGINS_WITH", "HDR_DOES_NOT_BEGIN_WITH", "HDR_CONTAINS",
            "HDR_DOES_NOT_CONTAIN", "HDR_ENDS_WITH", "HDR_DOES_NOT_END_WITH", "HDR_EQUALS", "HDR_DOES_NOT_EQUAL"),
            value=L("str"), match_case=MATCH_CASE),
        path=O(("match_criteria",), match_criteria=E(
            "BEGINS_WITH", "DOES_NOT_BEGIN_WITH", "CONTAINS", "DOES_NOT_CONTAIN", "ENDS_WITH", "DOES_NOT_END_WITH",
            "EQUALS", "DOES_NOT_EQUAL", "REGEX_MATCH", "REGEX_DOES_NOT_MATCH"),
            match_str=L("str"), string_group_refs=Ref("stringgroup", many=True), match_case=MATCH_CASE),
    ),
    switching_action=O(
        ("action",),
        action=E("HTTP_SWITCHING_SELECT_POOL", "HTTP_SWITCHING_SELECT_LOCAL", "HTTP_SWITCHING_SELECT_POOLGROUP"),
        pool_ref=Ref("pool"), pool_group_ref=Ref("poolgroup"), status_code="any", file=ANY, server=ANY,
    ),
    redirect_action=ANY, rewrite_url_action=ANY, hdr_action=L(ANY), rewrite_location_hdr_action=ANY,
)

DATASCRIPT_EVENTS = tuple(f"VS_DATASCRIPT_EVT_{e}" for e in (
    "HTTP_REQ", "HTTP_RESP", "HTTP_RESP_DATA", "HTTP_LB_FAILED", "HTTP_REQ_DATA", "HTTP_RESP_FAILED", "HTTP_LB_DONE",
    "HTTP_AUTH", "HTTP_POST_AUTH", "TCP_CLIENT_ACCEPT", "SSL_HANDSHAKE_DONE", "CLIENT_SSL_PRE_CONNECT",
    "CLIENT_SSL_CLIENT_HELLO_RECV", "DNS_REQ", "DNS_RESP", "L4_REQUEST", "L4_RESPONSE", "MAX"))
L4_RULE = O(
    ("name", "index"),
    name="str", index="int", enable="bool",
    match=O(
        port=O(("match_criteria",), match_criteria=E("IS_IN", "IS_NOT_IN"), ports=L("int"),
               port_ranges=L(O(("start", "end"), start="int", end="int"))),
        protocol=O(("match_criteria", "protocol"), match_criteria=E("IS_IN", "IS_NOT_IN"),
                   protocol=E("PROTOCOL_TCP", "PROTOCOL_UDP", "PROTOCOL_ICMP", "PROTOCOL_SCTP")),
        client_ip=ANY,
    ),
    action=O(
        select_pool=O(
            ("action_type",),
            action_type=E("L4_RULE_ACTION_SELECT_POOL", "L4_RULE_ACTION_SELECT_POOLGROUP"),
            pool_ref=Ref("pool"), pool_group_ref=Ref("poolgroup"),
        ),
    ),
)

TYPES: dict[str, TypeSpec] = {t.name: t for t in [
    _t("tenant", "Tenant", local="bool", config_settings=ANY, attrs=ANY, suggested_object_labels=ANY,
       enforce_label_group="bool", label_group_refs=ANY, created_by="str"),
    _t("cloud", "Cloud", ("name", "vtype"),
       vtype=CLOUD_VTYPES, ipam_provider_ref=Ref("ipamdnsproviderprofile"),
       dns_provider_ref=Ref("ipamdnsproviderprofile"), dhcp_enabled="bool", mtu="int",
       prefer_static_routes="bool", se_group_template_ref=Ref("serviceenginegroup"),
       enable_vip_static_routes="bool", ip6_autocfg_enabled="bool", state_based_dns_registration="bool",
       obj_name_prefix="str", license_type="str", license_tier="str", autoscale_polling_interval="int",
       vcenter_configuration=ANY, nsxt_configuration=ANY, linuxserver_configuration=ANY, aws_configuration=ANY,
       azure_configuration=ANY, gcp_configuration=ANY, openstack_configuration=ANY,
       dns_resolution_on_se="bool", enable_vip_on_all_interfaces="bool", maintenance_mode="bool",
       vmc_deployment="bool", cloud_ref=Ref("cloud"), vpc_mode="str"),
    _t("serviceenginegroup", "ServiceEngineGroup", cloud_scoped=True, open=True, cloud_ref=Ref("cloud"),
       ha_mode=E("HA_MODE_SHARED_PAIR", "HA_MODE_SHARED", "HA_MODE_LEGACY_ACTIVE_STANDBY"),
       algo=E("PLACEMENT_ALGO_PACKED", "PLACEMENT_ALGO_DISTRIBUTED"), max_se="int", max_vs_per_se="int",
       min_scaleout_per_vs="int", max_scaleout_per_vs="int", buffer_se="int", vcpus_per_se="int",
       memory_per_se="int", se_name_prefix="str", labels=L(KEY_VALUE), created_by="str"),
    _t("network", "Network", cloud_scoped=True, cloud_ref=Ref("cloud"), vrf_context_ref=Ref("vrfcontext"),
       configured_subnets=L(O(
           ("prefix",), prefix=IP_PREFIX,
           static_ip_ranges=L(O(("range",), range=IP_RANGE, type=E(
               "STATIC_IPS_FOR_SE", "STATIC_IPS_FOR_VIP", "STATIC_IPS_FOR_VIP_AND_SE"))),
           static_ranges=L(IP_RANGE), static_ips=L(IP_ADDR))),
       dhcp_enabled="bool", exclude_discovered_subnets="bool", ip6_autocfg_enabled="bool",
       synced_from_se="bool", attrs=ANY, labels=L(KEY_VALUE), vcenter_dvs="bool", vimgrnw_ref="str",
       created_by="str"),
    _t("vrfcontext", "VrfContext", cloud_scoped=True, cloud_ref=Ref("cloud"),
       bgp_profile=O(("local_as", "ibgp"), local_as="int", ibgp="bool", peers=L(BGP_PEER),
                     keepalive_interval="int", hold_time="int", send_community="bool", shutdown="bool",
                     community=L("str"), routing_options=L(ANY), ip_communities=L(ANY), ibgp_local_as_override="bool"),
       static_routes=L(O(("route_id", "prefix", "next_hop"), route_id="str", prefix=IP_PREFIX, next_hop=IP_ADDR,
                         if_name="str", labels=L(KEY_VALUE), disable_gateway_monitor="bool")),
       system_default="bool", gateway_mon=L(ANY), lldp_enable="bool", attrs=ANY, labels=L(KEY_VALUE),
       bfd_profile=ANY, internal_gateway_monitor=ANY, created_by="str"),
    _t("ipamdnsproviderprofile", "IpamDnsProviderProfile", ("name", "type"),
       type=E("IPAMDNS_TYPE_INFOBLOX", "IPAMDNS_TYPE_AWS", "IPAMDNS_TYPE_OPENSTACK", "IPAMDNS_TYPE_GCP",
              "IPAMDNS_TYPE_INFOBLOX_DNS", "IPAMDNS_TYPE_CUSTOM", "IPAMDNS_TYPE_CUSTOM_DNS", "IPAMDNS_TYPE_AZURE",
              "IPAMDNS_TYPE_OCI", "IPAMDNS_TYPE_TENCENT", "IPAMDNS_TYPE_INTERNAL", "IPAMDNS_TYPE_INTERNAL_DNS",
              "IPAMDNS_TYPE_AWS_DNS", "IPAMDNS_TYPE_AZURE_DNS"),
       internal_profile=O(usable_networks=L(O(("nw_ref",), nw_ref=Ref("network"))),
                          dns_service_domain=L(ANY), ttl="int", dns_virtualservice_ref=Ref("virtualservice")),
       allocate_ip_in_vrf="bool", proxy_configuration=ANY, infoblox_profile=ANY, aws_profile=ANY,
       azure_profile=ANY, gcp_profile=ANY, custom_profile=ANY, openstack_profile=ANY, oci_profile=ANY,
       tencent_profile=ANY, created_by="str"),
    _t("virtualservice", "VirtualService",
       services=L(SERVICE), vsvip_ref=Ref("vsvip"), pool_ref=Ref("pool"), pool_group_ref=Ref("poolgroup"),
       application_profile_ref=Ref("applicationprofile"), network_profile_ref=Ref("networkprofile"),
       se_group_ref=Ref("serviceenginegroup"), vrf_context_ref=Ref("vrfcontext"), cloud_ref=Ref("cloud"),
       analytics_profile_ref=Ref("analyticsprofile"),
       type=E("VS_TYPE_NORMAL", "VS_TYPE_VH_PARENT", "VS_TYPE_VH_CHILD"),
       vh_type=E("VS_TYPE_VH_SNI", "VS_TYPE_VH_ENHANCED"), vh_parent_vs_ref=Ref("virtualservice"),
       vh_domain_name=L("str"), ssl_key_and_certificate_refs=Ref("sslkeyandcertificate", many=True),
       ssl_profile_ref=Ref("sslprofile"),
       http_policies=L(O(("index", "http_policy_set_ref"), index="int",
                         http_policy_set_ref=Ref("httppolicyset"))),
       l4_policies=L(O(("index", "l4_policy_set_ref"), index="int", l4_policy_set_ref=Ref("l4policyset"))),
       vs_datascripts=L(O(("index", "vs_datascript_set_ref"), index="int",
                          vs_datascript_set_ref=Ref("vsdatascriptset"))),
       enabled="bool", traffic_enabled="bool", east_west_placement="bool", bgp_peer_labels=L("str"),
       flow_dist=E("LOAD_AWARE", "CONSISTENT_HASH_SOURCE_IP_ADDRESS", "CONSISTENT_HASH_SOURCE_IP_ADDRESS_AND_PORT"),
       cloud_type=CLOUD_VTYPES, network_security_policy_ref=Ref("networksecuritypolicy"),
       waf_policy_ref=Ref("wafpolicy"), service_metadata="str", advertise_down_vs="bool", vip=L(VIP),
       dns_info=L(DNS_INFO), fqdn="str", created_by="str", enable_rhi="bool", enable_rhi_snat="bool",
       application_persistence_profile_ref=Ref("applicationpersistenceprofile"),
       ign_pool_net_reach="bool", limit_doser="bool", delay_fairness="bool", scaleout_ecmp="bool",
       use_bridge_ip_as_vip="bool", use_vip_as_snat="bool", remove_listening_port_on_vs_down="bool",
       close_client_conn_on_config_update="bool", max_cps_per_client="int", weight="int",
       analytics_policy=ANY, performance_limits=ANY, connections_rate_limit=ANY, requests_rate_limit=ANY,
       snat_ip=L(IP_ADDR), sideband_profile=ANY, static_dns_records=L(ANY), content_rewrite=ANY,
       vh_matches=L(ANY), saml_sp_config=ANY, ssl_sess_cache_avg_size="int", min_pools_up="int",
       error_page_profile_ref=Ref("errorpageprofile"), icap_request_profile_refs=Ref("icaprequestprofile", True),
       host_name_xlate="str", allow_invalid_client_cert="bool"),
    _t("vsvip", "VsVip",
       vip=L(VIP), dns_info=L(DNS_INFO), vrf_context_ref=Ref("vrfcontext"), cloud_ref=Ref("cloud"),
       east_west_placement="bool", bgp_peer_labels=L("str"), ipam_selector=ANY, use_standard_alb="bool",
       tier1_lr="str", vsvip_cloud_config_cksum="str", created_by="str"),
    _t("pool", "Pool",
       servers=L(SERVER), default_server_port="int", health_monitor_refs=Ref("healthmonitor", many=True),
       lb_algorithm=LB_ALGOS, lb_algorithm_hash=E(
           "LB_ALGORITHM_CONSISTENT_HASH_SOURCE_IP_ADDRESS", "LB_ALGORITHM_CONSISTENT_HASH_SOURCE_IP_ADDRESS_AND_PORT",
           "LB_ALGORITHM_CONSISTENT_HASH_URI", "LB_ALGORITHM_CONSISTENT_HASH_CUSTOM_HEADER",
           "LB_ALGORITHM_CONSISTENT_HASH_CUSTOM_STRING", "LB_ALGORITHM_CONSISTENT_HASH_CALLID"),
       lb_algorithm_consistent_hash_hdr="str", enabled="bool", cloud_ref=Ref("cloud"), vrf_ref=Ref("vrfcontext"),
       inline_health_monitor="bool", ssl_profile_ref=Ref("sslprofile"),
       ssl_key_and_certificate_ref=Ref("sslkeyandcertificate"), pki_profile_ref=Ref("pkiprofile"),
       application_persistence_profile_ref=Ref("applicationpersistenceprofile"),
       analytics_profile_ref=Ref("analyticsprofile"),
       placement_networks=L(O(("network_ref", "subnet"), network_ref=Ref("network"), subnet=IP_PREFIX)),
       service_metadata="str", east_west="bool", tier1_lr="str", created_by="str",
       graceful_disable_timeout="int", connection_ramp_duration="int", capacity_estimation="bool",
       fewest_tasks_feedback_delay="int", max_concurrent_connections_per_server="int", use_service_port="bool",
       append_port=E("NON_DEFAULT_80_443", "NEVER", "ALWAYS"), rewrite_host_header_to_server_name="bool",
       rewrite_host_header_to_sni="bool", sni_enabled="bool", server_name="str", request_queue_enabled="bool",
       request_queue_depth="int", server_timeout="int", conn_pool_properties=ANY, fail_action=ANY,
       nsx_securitygroup=L("str"), routing_pool="bool", ignore_server_port="bool", min_servers_up="int",
       host_check_enabled="bool"),
    _t("poolgroup", "PoolGroup",
       members=L(O(("pool_ref",), pool_ref=Ref("pool"), ratio="int", priority_label="str",
                   deployment_state=E("EVALUATION_IN_PROGRESS", "IN_SERVICE", "EVALUATION_FAILED", "OUT_OF_SERVICE"))),
       min_servers="int", fail_action=ANY, priority_labels_ref=Ref("prioritylabels"),
       implicit_priority_labels="bool", cloud_ref=Ref("cloud"), created_by="str", enable_http2="bool",
       deployment_policy_ref=Ref("poolgroupdeploymentpolicy"), service_metadata="str"),
    _t("httppolicyset", "HTTPPolicySet",
       http_request_policy=O(rules=L(HTTP_RULE)), http_response_policy=O(rules=L(ANY)),
       http_security_policy=O(rules=L(ANY)), is_internal_policy="bool", created_by="str",
       cloud_config_cksum="str", geo_db_ref=Ref("geodb"), ip_reputation_db_ref=Ref("ipreputationdb")),
    _t("vsdatascriptset", "VSDataScriptSet",
       datascript=L(O(("evt", "script"), evt=E(*DATASCRIPT_EVENTS), script="str")),
       pool_refs=Ref("pool", many=True), pool_group_refs=Ref("poolgroup", many=True),
       protocol_parser_refs=Ref("protocolparser", many=True), string_group_refs=Ref("stringgroup", many=True),
       description="str", created_by="str", rate_limiters=L(ANY)),
    _t("l4policyset", "L4PolicySet",
       l4_connection_policy=O(rules=L(L4_RULE)), is_internal_policy="bool", created_by="str", scaleout_ecmp="bool"),
    _t("sslkeyandcertificate", "SSLKeyAndCertificate", ("name", "certificate"),
       certificate=O(("certificate",), open=True, certificate="str"), key="str", key_passphrase="str",
       type=E("SSL_CERTIFICATE_TYPE_VIRTUALSERVICE", "SSL_CERTIFICATE_TYPE_SYSTEM", "SSL_CERTIFICATE_TYPE_CA"),
       format=E("SSL_PEM", "SSL_PKCS12"), status=E("SSL_CERTIFICATE_FINISHED", "SSL_CERTIFICATE_PENDING"),
       certificate_base64="bool", key_base64="bool", enable_ocsp_stapling="bool", ca_certs=L(ANY),
       key_params=ANY, ocsp_config=ANY, dynamic_params=ANY, import_key_to_hsm="bool", created_by="str",
       certificate_management_profile_ref=Ref("certificatemanagementprofile"),
       hardwaresecuritymodulegroup_ref=Ref("hardwaresecuritymodulegroup")),
    _t("healthmonitor", "HealthMonitor", ("name", "type"),
       type=HM_TYPES, send_interval="int", receive_timeout="int", successful_checks="int", failed_checks="int",
       monitor_port="int", tcp_monitor=ANY, udp_monitor=ANY, http_monitor=ANY, https_monitor=ANY,
       external_monitor=ANY, dns_monitor=ANY, sip_monitor=ANY, radius_monitor=ANY, is_federated="bool",
       allow_duplicate_monitors="bool", authentication=ANY, created_by="str"),
    _t("applicationprofile", "ApplicationProfile", ("name", "type"),
       type=E("APPLICATION_PROFILE_TYPE_L4", "APPLICATION_PROFILE_TYPE_HTTP", "APPLICATION_PROFILE_TYPE_SYSLOG",
              "APPLICATION_PROFILE_TYPE_DNS", "APPLICATION_PROFILE_TYPE_SSL", "APPLICATION_PROFILE_TYPE_SIP"),
       http_profile=ANY, tcp_app_profile=ANY, dns_service_profile=ANY, dos_rl_profile=ANY, sip_service_profile=ANY,
       preserve_client_ip="bool", preserve_client_port="bool", preserve_dest_ip_port="bool",
       l4_ssl_profile=ANY, cloud_config_cksum="str", created_by="str"),
    _t("networkprofile", "NetworkProfile", ("name", "profile"),
       profile=O(("type",), type=E("PROTOCOL_TYPE_TCP_PROXY", "PROTOCOL_TYPE_TCP_FAST_PATH",
                                   "PROTOCOL_TYPE_UDP_FAST_PATH", "PROTOCOL_TYPE_UDP_PROXY",
                                   "PROTOCOL_TYPE_SCTP_PROXY", "PROTOCOL_TYPE_SCTP_FAST_PATH"),
                 tcp_proxy_profile=ANY, tcp_fast_path_profile=ANY, udp_fast_path_profile=ANY,
                 udp_proxy_profile=ANY, sctp_proxy_profile=ANY, sctp_fast_path_profile=ANY),
       connection_mirror="bool", created_by="str"),
    # types albus does not write: seeded or referenced only, any field accepted
    _t("analyticsprofile", "AnalyticsProfile", open=True),
    _t("sslprofile", "SSLProfile", open=True),
    _t("pkiprofile", "PKIProfile", open=True),
    _t("applicationpersistenceprofile", "ApplicationPersistenceProfile", open=True),
    _t("stringgroup", "StringGroup", open=True),
    _t("protocolparser", "ProtocolParser", open=True),
    _t("networksecuritypolicy", "NetworkSecurityPolicy", open=True),
    _t("wafpolicy", "WafPolicy", open=True),
    _t("errorpageprofile", "ErrorPageProfile", open=True),
    _t("prioritylabels", "PriorityLabels", open=True),
]}

OPEN_TYPES = frozenset(t.name for t in TYPES.values() if t.body.open)

MODEL_TO_TYPE: dict[str, str] = {t.model: t.name for t in TYPES.values()}

# Inventory collections and the object type behind each.
INVENTORY_TYPES = {"virtualservice-inventory": "virtualservice", "pool-inventory": "pool",
                   "poolgroup-inventory": "poolgroup", "vsvip-inventory": "vsvip"}
