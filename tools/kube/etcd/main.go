// Command etcd is the upstream etcd server, built at the version kubernetes
// pins, so the kubetest harness runs against the same storage it does.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
