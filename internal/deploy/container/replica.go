package container

import (
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nanofaas/control-plane/internal/failure"
	"github.com/nanofaas/control-plane/internal/function"
)

// probeTimeout bounds one GET /health (connect and request).
const probeTimeout = 2 * time.Second

// containerPort is the port every function image serves on (runtime-contract §1.4).
const containerPort = "8080"

// replica is one running container of a function.
type replica struct {
	name string // nanofaas-<normalized fn>-r<k>
	base string // http://<bind-host>:<host port>
}

// containerName is nanofaas-<normalized fn>-r<k>.
func containerName(fn string, k int) string {
	return "nanofaas-" + normalize(fn) + "-r" + strconv.Itoa(k)
}

// normalize lowercases name, turns every run of characters outside [a-z0-9-] (and of dashes)
// into one dash and trims dashes; an empty result is "fn".
func normalize(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	dash := false
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		dash = true
	}
	if b.Len() == 0 {
		return "fn"
	}
	return b.String()
}

// isReserved reports the names the provider sets itself; a spec's env cannot override them
// (the same list as the k8s provider; PORT is not reserved because the container's port is
// fixed by the image, not by the environment).
func isReserved(name string) bool {
	switch name {
	case "FUNCTION_NAME", "WARM", "TIMEOUT_MS", "EXECUTION_MODE", "WATCHDOG_CMD", "CALLBACK_URL":
		return true
	}
	return false
}

// containerEnv is the container's environment as KEY=VALUE sorted by key: FUNCTION_NAME,
// WARM=true, TIMEOUT_MS, EXECUTION_MODE (when runtimeMode is set), WATCHDOG_CMD (when
// runtimeCommand is non-blank), CALLBACK_URL (when configured) and the spec's env without the
// reserved names.
func containerEnv(spec *function.Spec, callbackURL string) []string {
	env := make(map[string]string, len(spec.Env)+6)
	for k, v := range spec.Env {
		if k != "" && !isReserved(k) {
			env[k] = v
		}
	}
	env["FUNCTION_NAME"] = spec.Name
	env["WARM"] = "true"
	env["TIMEOUT_MS"] = strconv.Itoa(spec.Timeout())
	if spec.RuntimeMode != nil && *spec.RuntimeMode != "" {
		env["EXECUTION_MODE"] = string(*spec.RuntimeMode)
	}
	if spec.RuntimeCommand != nil && strings.TrimSpace(*spec.RuntimeCommand) != "" {
		env["WATCHDOG_CMD"] = *spec.RuntimeCommand
	}
	if strings.TrimSpace(callbackURL) != "" {
		env["CALLBACK_URL"] = callbackURL
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k + "=" + env[k]
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
	name := containerName(st.name, k)
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
	p.logger.Debug("container started", "function", st.name, "container", name, "url", r.base)
	if err := p.awaitReady(ctx, r.base); err != nil {
		p.remove(context.WithoutCancel(ctx), name)
		return replica{}, err
	}
	p.logger.Info("container ready", "function", st.name, "container", name, "url", r.base)
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
		if p.probe(rctx, base) {
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

// probe reports whether GET <base>/health answers 2xx within probeTimeout.
func (p *Provider) probe(ctx context.Context, base string) bool {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health", nil)
	if err != nil {
		return false
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}
