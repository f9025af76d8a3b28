package container

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nanofaas/control-plane/internal/deploy"
	"github.com/nanofaas/control-plane/internal/deploy/localbackend"
	"github.com/nanofaas/control-plane/internal/failure"
	"github.com/nanofaas/control-plane/internal/function"
)

// containerPort is the port every function image serves on (runtime-contract §1.4).
const containerPort = "8080"

// replica is one running container of a function.
type replica struct {
	name string // nanofaas-<normalized fn>-r<k>
	base string // http://<bind-host>:<host port>
}

// containerName is nanofaas-<normalized fn>-r<k>.
func containerName(fn string, k int) string {
	return "nanofaas-" + deploy.NormalizeName(fn) + "-r" + strconv.Itoa(k)
}

// containerEnv is the container's environment as KEY=VALUE: deploy.ReplicaEnv sorted by key (the
// order `docker run -e` gets them in), without a nameless spec entry, which -e cannot express.
// PORT is not reserved because the container's port is fixed by the image, not by the
// environment.
func containerEnv(spec *function.Spec, callbackURL string) []string {
	vars := deploy.ReplicaEnv(spec, callbackURL)
	slices.SortFunc(vars, func(a, b deploy.EnvVar) int { return strings.Compare(a.Name, b.Name) })
	out := make([]string, 0, len(vars))
	for _, v := range vars {
		if v.Name != "" {
			out = append(out, v.Name+"="+v.Value)
		}
	}
	return out
}

// runArgs is `run -d --name <name> -p <bind-host>:<port>:8080 [-e K=V …] <image> [command…]`.
// The port is published on the bind host only (D20).
func runArgs(name, hostAddr string, env []string, spec *function.Spec) []string {
	args := make([]string, 0, 6+2*len(env)+1+len(spec.Command))
	args = append(args, "run", "-d", "--name", name, "-p", hostAddr+":"+containerPort)
	for _, kv := range env {
		args = append(args, "-e", kv)
	}
	args = append(args, spec.Image)
	return append(args, spec.Command...)
}

// initialReplicas is scalingConfig.minReplicas when set (negative read as 0), else 1.
func initialReplicas(spec *function.Spec) int {
	if sc := spec.ScalingConfig; sc != nil && sc.MinReplicas != nil {
		return max(0, *sc.MinReplicas)
	}
	return 1
}

// freeHostAddr binds an ephemeral port on host, reads it and releases it for the container
// (best-effort and racy by nature, as in the reference; a lost race makes `run` fail).
func freeHostAddr(host string) (string, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// startReplica starts replica k of st and waits for it to be ready. Any container it may have
// created is removed again when it fails.
func (p *Provider) startReplica(ctx context.Context, st *fnState, k int) (replica, error) {
	name := containerName(st.Name(), k)
	hostAddr, err := freeHostAddr(p.cfg.BindHost)
	if err != nil {
		return replica{}, failure.Unavailablef("Failed to start container '%s': no free port on %s: %v", name, p.cfg.BindHost, err)
	}
	r := replica{name: name, base: "http://" + hostAddr}
	_ = p.cli.run(ctx, "rm", "-f", name) // a leftover of an earlier run would make the name clash

	res := p.cli.run(ctx, runArgs(name, hostAddr, st.env, st.spec)...)
	if !res.ok() {
		// A failed run can leave a created container behind (e.g. the port was taken).
		p.remove(context.WithoutCancel(ctx), name)
		return replica{}, failure.Unavailablef("Failed to start container '%s': %s", name, res.output)
	}
	p.logger.Debug("container started", "function", st.Name(), "container", name, "url", r.base)
	if err := p.awaitReady(ctx, r.base); err != nil {
		p.remove(context.WithoutCancel(ctx), name)
		return replica{}, err
	}
	p.logger.Info("container ready", "function", st.Name(), "container", name, "url", r.base)
	return r, nil
}

// awaitReady polls GET <base>/health every poll interval until a 2xx; after the readiness
// timeout it fails with the reference's message.
func (p *Provider) awaitReady(ctx context.Context, base string) error {
	rctx, cancel := context.WithTimeout(ctx, p.cfg.ReadinessTimeout)
	defer cancel()
	tick := time.NewTicker(p.cfg.ReadinessPollInterval)
	defer tick.Stop()
	for {
		if localbackend.Healthy(rctx, p.client, base) {
			return nil
		}
		select {
		case <-rctx.Done():
			if err := ctx.Err(); err != nil {
				return failure.Unavailablef("Gave up waiting for container endpoint %s: %v", base, err)
			}
			return failure.Unavailablef("Timed out waiting for container endpoint to become ready: %s", base)
		case <-tick.C:
		}
	}
}
