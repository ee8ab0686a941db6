//go:build tools

// Wrapper module that builds helm from the Go module proxy for the deploy
// tests (tests/deploy). See albus/tools/helm.py; the version pinned in go.mod
// must match HELM_VERSION there.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
