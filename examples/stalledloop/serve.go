package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/pflag"
)

const (
	// defaultAddr is the port the README, the demo and run scripts use.
	defaultAddr = "127.0.0.1:18080"
	// defaultDBDelay is long enough to dominate a request and to stand out
	// from the noise in a trace, short enough for a quick demo.
	defaultDBDelay = 20 * time.Millisecond
)

type serveConfig struct {
	addr      string
	dbAddr    string
	storeAddr string
	dbDelay   time.Duration
	readyFile string
}

func parseServeFlags(args []string) (serveConfig, error) {
	var cfg serveConfig
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.StringVar(&cfg.addr, "addr", defaultAddr, "HTTP address of the event loop")
	fs.StringVar(&cfg.dbAddr, "db-addr", "127.0.0.1:0", "address of the slow database (port 0: any free port)")
	fs.StringVar(&cfg.storeAddr, "store-addr", "127.0.0.1:0", "address of the result store (port 0: any free port)")
	fs.DurationVar(&cfg.dbDelay, "db-delay", defaultDBDelay, "how long the database takes to answer each query")
	fs.StringVar(&cfg.readyFile, "ready-file", "", "write the pid to this file once listening")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return cfg, err
		}
		return cfg, usageError{err}
	}
	if fs.NArg() > 0 {
		return cfg, usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if cfg.dbDelay < 0 {
		return cfg, usageError{fmt.Errorf("--db-delay must not be negative, got %s", cfg.dbDelay)}
	}
	return cfg, nil
}

// server is the whole reproduction: database, result store and the loop.
type server struct {
	db       *dbServer
	store    *storeServer
	loop     *eventLoop
	loopDone chan error
}

// startServer returns once all three are listening.
func startServer(cfg serveConfig) (*server, error) {
	db, err := startDB(cfg.dbAddr, cfg.dbDelay)
	if err != nil {
		return nil, err
	}
	store, err := startStore(cfg.storeAddr)
	if err != nil {
		db.Close()
		return nil, err
	}
	loop, err := newEventLoop(cfg.addr, db.addr(), store.addr())
	if err != nil {
		store.Close()
		db.Close()
		return nil, fmt.Errorf("event loop: %w", err)
	}
	s := &server{db: db, store: store, loop: loop, loopDone: make(chan error, 1)}
	go func() { s.loopDone <- loop.run() }()
	return s, nil
}

// url is where the loop serves HTTP.
func (s *server) url() string { return "http://" + s.loop.addr.String() + "/" }

// shutdown stops the loop first, so no request is cut off half way through
// a backend call, then the backends.
func (s *server) shutdown() error {
	err := s.loop.wake()
	if lerr := <-s.loopDone; lerr != nil && err == nil {
		err = lerr
	}
	s.loopDone <- nil // later calls find the loop already stopped
	return errors.Join(err, s.store.Close(), s.db.Close())
}

func runServe(ctx context.Context, args []string, logger *slog.Logger) error {
	cfg, err := parseServeFlags(args)
	if err != nil {
		return err
	}
	srv, err := startServer(cfg)
	if err != nil {
		return err
	}
	logger.Info("serving",
		"url", srv.url(),
		"db", srv.db.addr().String(),
		"db_delay", cfg.dbDelay.String(),
		"store", srv.store.addr().String(),
		"pid", os.Getpid())
	if cfg.readyFile != "" {
		if err := writeReadyFile(cfg.readyFile, os.Getpid()); err != nil {
			return errors.Join(err, srv.shutdown())
		}
	}
	select {
	case <-ctx.Done():
		return srv.shutdown()
	case err := <-srv.loopDone:
		srv.loopDone <- err
		return errors.Join(fmt.Errorf("event loop stopped: %w", err), srv.shutdown())
	}
}

// writeReadyFile writes the pid atomically, so a watcher never reads a
// half-written file.
func writeReadyFile(path string, pid int) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ready-*")
	if err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	_, werr := tmp.WriteString(strconv.Itoa(pid) + "\n")
	if err := errors.Join(werr, tmp.Close()); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("ready file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("ready file: %w", err)
	}
	return nil
}
