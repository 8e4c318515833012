package lambda

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/spikewatch/spikewatch/agent"
	"github.com/spikewatch/spikewatch/internal/catalog"
)

// Environment variables of the agent function. The member stack (stacksets/member.go) sets
// HUB_ENDPOINT, SPIKEWATCH_LOG_LEVEL and SPIKEWATCH_CATALOG_DIGEST; the others are optional. Lambda
// itself sets AWS_LAMBDA_FUNCTION_NAME and AWS_REGION.
const (
	// EnvHub is the hub's gRPC endpoint, host:port (required).
	EnvHub = "HUB_ENDPOINT"
	// EnvAuth is how the agent authenticates to the hub: "token" (the default) sends
	// SPIKEWATCH_TOKEN. IAM authentication ("aws", presigned sts:GetCallerIdentity) is not
	// implemented yet and is refused with an error.
	EnvAuth = "SPIKEWATCH_AUTH"
	// EnvToken is the hub token (required with token authentication), as for `spikewatch agent`.
	EnvToken = "SPIKEWATCH_TOKEN"
	// EnvTLS turns TLS to the hub on or off ("true"/"false"). By default it is on, except for a
	// loopback hub (localhost, 127.0.0.0/8, ::1).
	EnvTLS = "SPIKEWATCH_TLS"
	// EnvTLSCA is a PEM bundle of CAs to verify the hub with, instead of the system's.
	EnvTLSCA = "SPIKEWATCH_TLS_CA"
	// EnvCatalog is a catalog file; the embedded catalog when unset.
	EnvCatalog = "SPIKEWATCH_CATALOG"
	// EnvCatalogDigest is the digest of the catalog the member stack was made from. A different
	// catalog in the function is logged (as the hub does), not refused: refusing would stop every
	// count.
	EnvCatalogDigest = "SPIKEWATCH_CATALOG_DIGEST"
	// EnvAgentID names the agent to the hub; default lambda:REGION:FUNCTION.
	EnvAgentID = "SPIKEWATCH_AGENT_ID"
	// EnvLogLevel is debug, info, warn or error (read by `spikewatch lambda`).
	EnvLogLevel = "SPIKEWATCH_LOG_LEVEL"
	// EnvRuntimeAPI is the Lambda Runtime API's host:port, set by Lambda.
	EnvRuntimeAPI = "AWS_LAMBDA_RUNTIME_API"
)

// HandlerFromEnv builds the handler from the function's environment (see the Env constants). Every
// problem found is reported, joined in one error.
func HandlerFromEnv(getenv func(string) string, log *slog.Logger) (*Handler, error) {
	if log == nil {
		log = slog.Default()
	}
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	var errs []error
	cfg := agent.Config{Hub: get(EnvHub), AgentID: get(EnvAgentID)}

	var hubHost string
	if cfg.Hub == "" {
		errs = append(errs, fmt.Errorf("%s is not set: the hub's gRPC endpoint, host:port", EnvHub))
	} else if host, port, err := net.SplitHostPort(cfg.Hub); err != nil || host == "" || port == "" {
		errs = append(errs, fmt.Errorf("%s=%q is not host:port", EnvHub, cfg.Hub))
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		errs = append(errs, fmt.Errorf("%s=%q: port %q is not a number", EnvHub, cfg.Hub, port))
	} else {
		hubHost = host
	}

	switch auth := strings.ToLower(get(EnvAuth)); auth {
	case "", "token":
		cfg.Token = get(EnvToken)
		if cfg.Token == "" {
			errs = append(errs, fmt.Errorf("%s is not set: the agent needs a hub token (%s=token)", EnvToken, EnvAuth))
		}
	case "aws":
		errs = append(errs, fmt.Errorf("%s=aws: IAM authentication of agents is not implemented yet; use %s=token with %s", EnvAuth, EnvAuth, EnvToken))
	default:
		errs = append(errs, fmt.Errorf("%s=%q: want token", EnvAuth, auth))
	}

	useTLS := hubHost != "" && !isLoopback(hubHost)
	if v := get(EnvTLS); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: want true or false", EnvTLS, v))
		}
		useTLS = b
	}
	if ca := get(EnvTLSCA); ca != "" {
		pool, err := loadPool(ca)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvTLSCA, err))
		}
		if !useTLS && get(EnvTLS) != "" {
			errs = append(errs, fmt.Errorf("%s is set but %s=false", EnvTLSCA, EnvTLS))
		}
		useTLS = true
		cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	} else if useTLS {
		cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if !useTLS && hubHost != "" && !isLoopback(hubHost) {
		log.Warn("TLS to the hub is off: counts and the token travel in clear", "hub", cfg.Hub)
	}

	cat, err := catalog.Load(get(EnvCatalog))
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", EnvCatalog, err))
	} else if want := get(EnvCatalogDigest); want != "" && want != cat.Digest {
		log.Warn("the function's catalog is not the one the member stack was made from",
			"catalog", cat.Digest, EnvCatalogDigest, want)
	}

	if cfg.AgentID == "" {
		cfg.AgentID = "lambda"
		for _, k := range []string{"AWS_REGION", "AWS_LAMBDA_FUNCTION_NAME"} {
			if v := get(k); v != "" {
				cfg.AgentID += ":" + v
			}
		}
	}
	if len(cfg.AgentID) > 256 {
		errs = append(errs, fmt.Errorf("agent id %q is over 256 bytes (%s)", cfg.AgentID[:32]+"...", EnvAgentID))
	}

	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("lambda: configuration: %w", err)
	}
	h, err := NewHandler(cfg, cat, log)
	if err != nil {
		return nil, err
	}
	log.Info("agent configured", "hub", cfg.Hub, "tls", cfg.TLS != nil, "agent_id", cfg.AgentID, "catalog", cat.Digest)
	return h, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func loadPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no PEM certificates in %s", path)
	}
	return pool, nil
}
