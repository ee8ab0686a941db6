//go:build tools

// Package tools records the commands this module builds, so that `go mod
// tidy` keeps their dependencies (and go.sum entries) in the module graph.
// The build tag keeps the file out of every real build: main packages
// cannot otherwise be imported.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
