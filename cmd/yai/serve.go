package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/yai-dev/yai/internal/serve"
	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/stages"
)

func init() {
	register(command{name: "serve", summary: "an OpenAI-compatible server over a model and its adapters", run: func(args []string) int {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return serveMain(ctx, args, os.Stderr, nil)
	}})
}

const serveUsage = `
Usage: yai serve --model MODEL [--adapter NAME=DIR ...] [--host 127.0.0.1] [--port 8080] [flags]

Answers OpenAI's API over the model and its adapters: GET /v1/models, POST
/v1/chat/completions and POST /v1/completions, streamed (server-sent events) or not. Each
--adapter is served as a model id of its own: a request's "model" field (or "adapters", as
mlx_lm.server takes it) names the adapter to use, the base model's id is --model. The
adapters are loaded once, at start; switching between them does not reload anything.

One generation runs at a time; other requests wait their turn, and a client that goes away
cancels its request. Binds to 127.0.0.1 unless --host says otherwise. With --api-key (or the
environment variable YAI_API_KEY) every /v1 request must send Authorization: Bearer KEY.
SIGINT or SIGTERM stops it gracefully: running requests get a few seconds to finish.`

// adapterFlag collects --adapter NAME=DIR.
type adapterFlag []serve.Adapter

func (a *adapterFlag) String() string {
	var parts []string
	for _, x := range *a {
		parts = append(parts, x.Name+"="+x.Path)
	}
	return strings.Join(parts, ", ")
}

func (a *adapterFlag) Set(v string) error {
	name, path, ok := strings.Cut(v, "=")
	if !ok || name == "" || path == "" {
		return fmt.Errorf("want NAME=DIR (the model id clients ask for, then an adapter or run directory), got %q", v)
	}
	*a = append(*a, serve.Adapter{Name: name, Path: path})
	return nil
}

// serveGrace is how long running requests get to finish after SIGINT or SIGTERM.
var serveGrace = 10 * time.Second

// serveMain runs the server until ctx ends. ready, when not nil, gets the address it
// listens on (tests pass port 0).
func serveMain(ctx context.Context, args []string, stderr io.Writer, ready func(addr string)) int {
	fs := newFlagSet("serve", serveUsage)
	fs.SetOutput(stderr)
	var mf modelFlags
	fs.StringVar(&mf.model, "model", "", "model: a directory, a Hugging Face repo id in the local cache, or an alias (required)")
	var adapters adapterFlag
	fs.Var(&adapters, "adapter", "NAME=DIR: serve the adapters in DIR (an adapter or run directory) as the model NAME (repeatable)")
	host := fs.String("host", "127.0.0.1", "address to listen on (0.0.0.0 for every interface)")
	port := fs.Int("port", 8080, "port to listen on (0 picks a free one)")
	apiKey := fs.String("api-key", "", "bearer token every /v1 request must carry (default: $YAI_API_KEY; none: no check)")
	maxTokens := fs.Int("max-tokens", serve.DefaultMaxTokens, "max_tokens of requests that do not give it")
	memoryLimit := fs.String("memory-limit", "", "MLX memory limit, e.g. 6GB (as a recipe's memory.limit)")
	maxBody := fs.String("max-body", "4MiB", "largest request body (413 above it)")
	quiet := fs.Bool("quiet", false, "log only errors")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return usageErrorTo(stderr, fs, "unexpected arguments %q", pos)
	}
	if mf.model == "" {
		return usageErrorTo(stderr, fs, "--model is required")
	}
	if err := firstError(inRange("port", *port, 0, 65535), inRange("max-tokens", *maxTokens, 1, 1<<30)); err != nil {
		return usageErrorTo(stderr, fs, "%v", err)
	}
	body, err := stages.ParseBytes(*maxBody)
	if err == nil && body < 1 {
		err = fmt.Errorf("--max-body must be positive, got %s", *maxBody)
	}
	if err != nil {
		return usageErrorTo(stderr, fs, "--max-body: %v", err)
	}
	var limit stages.Bytes
	if *memoryLimit != "" {
		if limit, err = stages.ParseBytes(*memoryLimit); err == nil && limit < 1 {
			err = fmt.Errorf("must be positive")
		}
		if err != nil {
			return usageErrorTo(stderr, fs, "--memory-limit: %v", err)
		}
	}
	key := *apiKey
	if key == "" {
		key = os.Getenv("YAI_API_KEY")
	}
	dir, err := mf.resolve()
	if err != nil {
		fmt.Fprintln(stderr, "yai serve:", err)
		return 1
	}
	level := slog.LevelInfo
	if *quiet {
		level = slog.LevelError
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if limit > 0 {
		mlx.SetMemoryLimit(uint64(limit))
	}
	srv, err := serve.New(serve.Config{ModelDir: dir, ModelID: mf.model, Adapters: adapters, APIKey: key,
		MaxBodyBytes: int64(body), MaxTokens: *maxTokens, Log: log})
	if err != nil {
		fmt.Fprintln(stderr, "yai serve:", err)
		return 1
	}
	defer srv.Close()

	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		fmt.Fprintln(stderr, "yai serve:", err)
		return 1
	}
	// Generations end when the server stops for good (after the grace period).
	base, cancel := context.WithCancel(context.Background())
	defer cancel()
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second, // the body; generation time is not bounded, writes are (per chunk)
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	addr := ln.Addr().String()
	auth := "no API key"
	if key != "" {
		auth = "API key required"
	}
	fmt.Fprintf(stderr, "yai serve: %s on http://%s/v1 (models: %s; %s; one generation at a time)\n",
		mf.model, addr, strings.Join(srv.Models(), ", "), auth)
	if ready != nil {
		ready(addr)
	}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	select {
	case err := <-done:
		fmt.Fprintln(stderr, "yai serve:", err)
		return 1
	case <-ctx.Done():
	}
	fmt.Fprintln(stderr, "yai serve: shutting down")
	sctx, scancel := context.WithTimeout(context.Background(), serveGrace)
	defer scancel()
	if err := hs.Shutdown(sctx); err != nil {
		// Past the grace period: cancel what still runs and close the connections.
		cancel()
		hs.Close()
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(stderr, "yai serve:", err)
	}
	return 0
}
