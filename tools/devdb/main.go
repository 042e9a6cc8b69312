// Command devdb runs an embedded FerretDB (MongoDB wire protocol on top of
// SQLite or PostgreSQL) for DevPocket Server development and tests.
//
// FerretDB listens on a private Unix socket; devdb listens on TCP and proxies
// every connection to it through a front that serializes write commands
// (FerretDB v1 runs update/findAndModify as unlocked read-then-write).
//
// When listening, devdb prints exactly one JSON line to stdout:
//
//	{"ready":true,"listen":"127.0.0.1:PORT"}
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

type options struct {
	listen         string
	dataDir        string
	postgresqlURL  string
	logLevel       slog.Level
	lockWait       time.Duration
	exitOnStdinEOF bool
	noSerialize    bool
}

func main() {
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "devdb:", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if opts.exitOnStdinEOF {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		go func() {
			// Returns when the parent closes the pipe or dies.
			_, _ = io.Copy(io.Discard, os.Stdin)
			cancel()
		}()
	}

	if err := run(ctx, opts, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "devdb:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, output io.Writer) (options, error) {
	fs := flag.NewFlagSet("devdb", flag.ContinueOnError)
	fs.SetOutput(output)

	var opts options
	var logLevel string
	fs.StringVar(&opts.listen, "listen", "127.0.0.1:27017", "TCP `address` to listen on (port 0 picks a free port)")
	fs.StringVar(&opts.dataDir, "data-dir", "", "`directory` for SQLite data files (created if missing)")
	fs.StringVar(&opts.postgresqlURL, "postgresql-url", "", "use the PostgreSQL backend with this connection `URL` instead of SQLite")
	fs.StringVar(&logLevel, "log-level", "warn", "FerretDB log `level`: debug, info, warn or error")
	fs.DurationVar(&opts.lockWait, "lock-wait", 3*time.Second, "how long to wait for another devdb to release --data-dir")
	fs.BoolVar(&opts.exitOnStdinEOF, "exit-on-stdin-eof", false, "exit when stdin is closed (used by the launcher so a dead parent leaves no orphan)")
	fs.BoolVar(&opts.noSerialize, "no-serialize", false, "debug only: do not serialize write commands (exposes FerretDB v1 lost updates)")

	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}

	if err := opts.logLevel.UnmarshalText([]byte(logLevel)); err != nil {
		return options{}, fmt.Errorf("invalid --log-level %q", logLevel)
	}

	if opts.dataDir == "" && opts.postgresqlURL == "" {
		return options{}, errors.New("either --data-dir (SQLite) or --postgresql-url is required")
	}

	return opts, nil
}

// run starts FerretDB and the front, prints the ready line and serves until ctx is canceled.
func run(ctx context.Context, opts options, stdout io.Writer) error {
	logger := newLogger(os.Stderr, opts.logLevel)

	socketDir, err := os.MkdirTemp("", "devdb-")
	if err != nil {
		return fmt.Errorf("create socket directory: %w", err)
	}
	defer os.RemoveAll(socketDir)
	socketPath := filepath.Join(socketDir, "ferretdb.sock")

	config, unlock, err := ferretConfig(opts, socketPath, logger)
	if err != nil {
		return err
	}
	defer unlock()

	fdb, err := ferretdb.New(config)
	if err != nil {
		return fmt.Errorf("start FerretDB: %w", err)
	}

	ln, err := net.Listen("tcp", opts.listen)
	if err != nil {
		// FerretDB is listening already; let it shut down before returning.
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		_ = fdb.Run(cancelled)
		return fmt.Errorf("listen on %s: %w", opts.listen, err)
	}

	return serve(ctx, fdb, ln, newFront("unix", socketPath, !opts.noSerialize, logger), stdout)
}

// serve runs FerretDB and the front until ctx is canceled or one of them stops.
func serve(ctx context.Context, fdb *ferretdb.FerretDB, ln net.Listener, f *front, stdout io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	fdbDone := make(chan error, 1)
	go func() {
		fdbDone <- fdb.Run(ctx)
		cancel()
	}()

	frontDone := make(chan error, 1)
	go func() {
		frontDone <- f.serve(ctx, ln)
		cancel()
	}()

	if err := printReady(stdout, ln.Addr().String()); err != nil {
		cancel()
	}

	<-ctx.Done()
	frontErr := <-frontDone
	fdbErr := <-fdbDone

	if frontErr != nil {
		return fmt.Errorf("front: %w", frontErr)
	}
	if fdbErr != nil {
		return fmt.Errorf("FerretDB: %w", fdbErr)
	}
	return nil
}

// ferretConfig builds FerretDB's configuration. For SQLite it creates and locks the data directory;
// the returned function releases that lock.
func ferretConfig(opts options, socketPath string, logger *slog.Logger) (*ferretdb.Config, func(), error) {
	config := &ferretdb.Config{
		Listener: ferretdb.ListenerConfig{Unix: socketPath},
		Logger:   logger,
	}

	if opts.postgresqlURL != "" {
		config.Handler = "postgresql"
		config.PostgreSQLURL = opts.postgresqlURL
		return config, func() {}, nil
	}

	dir, err := filepath.Abs(opts.dataDir)
	if err != nil {
		return nil, nil, fmt.Errorf("resolve --data-dir: %w", err)
	}
	if err = os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create data directory: %w", err)
	}

	unlock, err := lockDataDir(dir, opts.lockWait)
	if err != nil {
		return nil, nil, err
	}

	config.Handler = "sqlite"
	config.SQLiteURL = sqliteURL(dir)
	return config, unlock, nil
}

// sqliteURL returns the "file:" URL of a directory, as FerretDB expects it (trailing slash).
func sqliteURL(dir string) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(dir) + "/", OmitHost: true}
	return u.String()
}

func printReady(w io.Writer, addr string) error {
	line, err := json.Marshal(struct {
		Ready  bool   `json:"ready"`
		Listen string `json:"listen"`
	}{Ready: true, Listen: addr})
	if err != nil {
		return err
	}

	_, err = fmt.Fprintf(w, "%s\n", line)
	return err
}
