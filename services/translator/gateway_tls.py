"""TLS passthrough on a Gateway's L4 VS: the datascript that picks a pool group by server name (pure).

AKO's passthrough VS (``internal/nodes/avi_model_tls_passthrough.go``) is an
L4 VS (``System-L4-Application``, ``System-TCP-Proxy``) whose vsdatascriptset
runs on ``VS_DATASCRIPT_EVT_L4_REQUEST`` with the ``Default-TLS`` protocol
parser: it reads the ClientHello's server name, without decrypting anything,
and selects the pool group of that host; the bytes go to the backend as they
came. albus does the same on the Gateway's VS, with two differences that the
Gateway API needs: the script first looks at the VS port (only TLS listener
ports are parsed; TCP/UDP listeners on the same VS are the L4 policy's), and
it looks the name up in a table of the Gateway's routes — exact names, then
``*.`` wildcards from the longest suffix, then a route without hostnames —
instead of deriving the pool group's name from the server name. A name no
route takes, or a connection that is not TLS, is closed.

The vsdatascriptset is named as the VS and lists in ``pool_group_refs`` every
pool group the script may select, as the controller requires.
"""

from __future__ import annotations

from services.common.config import Config
from services.common.contracts import AviObject
from services.translator import l4
from services.translator.gateway_l4 import ANY_HOST
from services.translator.refs import markers, ref

EVENT = "VS_DATASCRIPT_EVT_L4_REQUEST"
PARSER = "Default-TLS"

# The table is filled in; everything else is fixed. Lua: `routes[port]` is nil on non-TLS ports.
_SCRIPT = """local routes = {TABLE}
local on_port = routes[avi.vs.port()]
if on_port ~= nil then
  local avi_tls = require "Default-TLS"
  local buffered = avi.l4.collect(20)
  local payload = avi.l4.read()
  local size = avi_tls.get_req_buffer_size(payload)
  if buffered < size then
    avi.l4.collect(size)
    payload = avi.l4.read()
  end
  local pg = nil
  if avi_tls.sanity_check(payload) then
    local name = avi_tls.get_sni(avi_tls.parse_record(payload))
    if name ~= nil then
      name = string.lower(name)
      pg = on_port.exact[name]
      local rest = name
      while pg == nil do
        local dot = string.find(rest, ".", 1, true)
        if dot == nil then
          break
        end
        rest = string.sub(rest, dot + 1)
        pg = on_port.suffix[rest]
      end
    end
    pg = pg or on_port.any
  end
  if pg ~= nil then
    avi.poolgroup.select(pg)
  else
    avi.vs.close_conn()
  end
end
avi.l4.ds_done()"""


def _lua_string(s: str) -> str:
    # Host names and pool group names hold no quote or backslash; escape anyway, the table is data.
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _table(by_sni: dict[int, dict[str, str]]) -> str:
    ports = []
    for port in sorted(by_sni):
        hosts = by_sni[port]
        exact = ", ".join(f"[{_lua_string(h.lower())}] = {_lua_string(pg)}"
                          for h, pg in sorted(hosts.items()) if not h.startswith("*"))
        suffix = ", ".join(f"[{_lua_string(h[2:].lower())}] = {_lua_string(pg)}"
                           for h, pg in sorted(hosts.items()) if h.startswith("*."))
        any_pg = f", any = {_lua_string(hosts[ANY_HOST])}" if ANY_HOST in hosts else ""
        ports.append(f'["{port}"] = {{exact = {{{exact}}}, suffix = {{{suffix}}}{any_pg}}}')
    return "{" + ", ".join(ports) + "}"


def script(by_sni: dict[int, dict[str, str]]) -> str:
    return _SCRIPT.replace("{TABLE}", _table(by_sni))


def datascript(vs_name: str, by_sni: dict[int, dict[str, str]], cfg: Config, tenant: str, gw_ns: str,
               gw: str) -> AviObject:
    common = {k: v for k, v in l4.common_fields(cfg, tenant).items() if k != "cloud_ref"}
    groups = sorted({pg for hosts in by_sni.values() for pg in hosts.values()})
    return AviObject(type="vsdatascriptset", name=vs_name, body={
        "name": vs_name, **common,
        "datascript": [{"evt": EVENT, "script": script(by_sni)}],
        "protocol_parser_refs": [ref("protocolparser", PARSER)],
        "pool_group_refs": [ref("poolgroup", g) for g in groups],
        "markers": markers(cfg.cluster, GatewayName=gw, GatewayNamespace=gw_ns),
    })
