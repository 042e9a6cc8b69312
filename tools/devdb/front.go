package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
)

// writeLock is the global lock that serializes write commands.
// It is a channel-based semaphore so that waiting can be abandoned
// when a connection dies, and so that it can be released by another goroutine.
type writeLock struct {
	ch chan struct{}
}

func newWriteLock() *writeLock {
	return &writeLock{ch: make(chan struct{}, 1)}
}

// acquire blocks until the lock is held or done is closed; it reports whether the lock is held.
func (l *writeLock) acquire(done <-chan struct{}) bool {
	select {
	case l.ch <- struct{}{}:
		return true
	case <-done:
		return false
	}
}

func (l *writeLock) release() {
	<-l.ch
}

// front accepts MongoDB wire connections and proxies each to the backend
// (FerretDB's Unix socket), holding the global write lock from the moment a
// write command is forwarded until its reply has been relayed to the client.
type front struct {
	backendNetwork string
	backendAddr    string
	serialize      bool
	lock           *writeLock
	logger         *slog.Logger

	mu    sync.Mutex
	conns map[*proxyConn]struct{}
	wg    sync.WaitGroup
}

func newFront(backendNetwork, backendAddr string, serialize bool, logger *slog.Logger) *front {
	return &front{
		backendNetwork: backendNetwork,
		backendAddr:    backendAddr,
		serialize:      serialize,
		lock:           newWriteLock(),
		logger:         logger,
		conns:          make(map[*proxyConn]struct{}),
	}
}

// serve accepts connections on ln until ctx is canceled or ln fails.
// Before returning it closes ln and all proxied connections and waits for them.
func (f *front) serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()

	var err error
	for {
		var client net.Conn
		client, err = ln.Accept()
		if err != nil {
			break
		}
		f.start(client)
	}

	_ = ln.Close()
	f.closeAll()
	f.wg.Wait()

	if ctx.Err() != nil && errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func (f *front) start(client net.Conn) {
	backend, err := net.Dial(f.backendNetwork, f.backendAddr)
	if err != nil {
		f.logger.Error("devdb front: cannot connect to FerretDB", slog.String("error", err.Error()))
		_ = client.Close()
		return
	}

	p := &proxyConn{
		client:    client,
		backend:   backend,
		lock:      f.lock,
		serialize: f.serialize,
		logger:    f.logger,
		done:      make(chan struct{}),
	}

	f.mu.Lock()
	f.conns[p] = struct{}{}
	f.mu.Unlock()

	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		p.run()

		f.mu.Lock()
		delete(f.conns, p)
		f.mu.Unlock()
	}()
}

func (f *front) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()

	for p := range f.conns {
		p.close()
	}
}

// proxyConn is one client connection paired with one backend connection.
type proxyConn struct {
	client    net.Conn
	backend   net.Conn
	lock      *writeLock
	serialize bool
	logger    *slog.Logger

	closeOnce sync.Once
	done      chan struct{}

	// mu protects holding and pendingID.
	mu        sync.Mutex
	holding   bool
	pendingID int32
}

// run relays both directions until either side fails, then releases everything.
func (p *proxyConn) run() {
	var wg sync.WaitGroup
	wg.Add(2)

	go func() {
		defer wg.Done()
		p.logEnd("client->ferretdb", p.relayRequests())
		p.close()
	}()

	go func() {
		defer wg.Done()
		p.logEnd("ferretdb->client", p.relayReplies())
		p.close()
	}()

	wg.Wait()
	p.releaseHeld()
}

func (p *proxyConn) close() {
	p.closeOnce.Do(func() {
		close(p.done)
		_ = p.client.Close()
		_ = p.backend.Close()
	})
}

func (p *proxyConn) logEnd(direction string, err error) {
	level := slog.LevelWarn
	if isDisconnect(err) {
		level = slog.LevelDebug
	}

	select {
	case <-p.done:
		// The other direction already closed the connection; errors are expected.
		level = slog.LevelDebug
	default:
	}

	p.logger.Log(context.Background(), level, "devdb front: connection closed",
		slog.String("direction", direction), slog.Any("error", err))
}

// isDisconnect reports whether err is an ordinary end of a connection.
func isDisconnect(err error) bool {
	return err == nil ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}

// relayRequests forwards client messages to FerretDB, taking the write lock for write commands.
func (p *proxyConn) relayRequests() error {
	r := bufio.NewReaderSize(p.client, 64*1024)

	for {
		msg, err := readMessage(r)
		if err != nil {
			return err
		}

		info := classifyRequest(msg)
		locked := p.serialize && info.serialize
		if locked && !p.acquire(requestID(msg)) {
			return net.ErrClosed
		}

		_, err = p.backend.Write(msg)

		if locked && !info.expectsReply {
			// moreToCome: no reply will ever arrive, the write is sequenced once forwarded.
			p.releaseHeld()
		}

		if err != nil {
			return err
		}
	}
}

// relayReplies forwards FerretDB messages to the client, releasing the write lock
// once the reply to the pending write command has been relayed.
func (p *proxyConn) relayReplies() error {
	r := bufio.NewReaderSize(p.backend, 64*1024)

	for {
		msg, err := readMessage(r)
		if err != nil {
			return err
		}

		if _, err = p.client.Write(msg); err != nil {
			return err
		}

		p.releaseIfReplyTo(responseTo(msg))
	}
}

// acquire takes the global lock for the request with the given id.
// It must be called before the request is forwarded so that the reply cannot be missed.
func (p *proxyConn) acquire(id int32) bool {
	if !p.lock.acquire(p.done) {
		return false
	}

	p.mu.Lock()
	p.holding = true
	p.pendingID = id
	p.mu.Unlock()

	return true
}

func (p *proxyConn) releaseIfReplyTo(id int32) {
	p.mu.Lock()
	defer p.mu.Unlock()

	if p.holding && p.pendingID == id {
		p.holding = false
		p.lock.release()
	}
}

func (p *proxyConn) releaseHeld() {
	p.mu.Lock()
	defer p.mu.Unlock()

	if p.holding {
		p.holding = false
		p.lock.release()
	}
}
