package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeBackend imitates FerretDB: one message at a time per connection, each
// command taking a while, and no locking of its own.
type fakeBackend struct {
	delay time.Duration

	inFlightWrites    atomic.Int32
	maxInFlightWrites atomic.Int32
	inFlight          atomic.Int32
	maxInFlight       atomic.Int32
}

// hangKey in a command document makes the fake backend never reply.
const hangKey = "hang"

func (b *fakeBackend) serve(t *testing.T, ln net.Listener) {
	t.Helper()

	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go b.handle(conn)
	}
}

func (b *fakeBackend) handle(conn net.Conn) {
	defer conn.Close()

	r := bufio.NewReader(conn)
	for {
		msg, err := readMessage(r)
		if err != nil {
			return
		}

		info := classifyRequest(msg)
		b.track(info.serialize, +1)
		time.Sleep(b.delay)
		b.track(info.serialize, -1)

		if !info.expectsReply || bytes.Contains(msg, []byte(hangKey)) {
			continue
		}
		if _, err = conn.Write(replyTo(msg)); err != nil {
			return
		}
	}
}

func (b *fakeBackend) track(write bool, delta int32) {
	updateMax(&b.maxInFlight, b.inFlight.Add(delta))
	if write {
		updateMax(&b.maxInFlightWrites, b.inFlightWrites.Add(delta))
	}
}

func updateMax(max *atomic.Int32, v int32) {
	for {
		cur := max.Load()
		if v <= cur || max.CompareAndSwap(cur, v) {
			return
		}
	}
}

// replyTo builds a deterministic reply that echoes the request's body.
func replyTo(req []byte) []byte {
	doc, _ := bsonDocument(req[headerLen+5:])
	return opMsgMessage(requestID(req)+1_000_000, requestID(req), 0, bodySection(doc))
}

// startFront runs a front in front of a fake backend and returns the front's address.
func startFront(t *testing.T, backend *fakeBackend, serialize bool) string {
	t.Helper()

	dir, err := os.MkdirTemp("", "devdb-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	socket := filepath.Join(dir, "backend.sock")

	backendLn, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = backendLn.Close() })
	go backend.serve(t, backendLn)

	frontLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	done := make(chan error, 1)
	go func() { done <- newFront("unix", socket, serialize, logger).serve(ctx, frontLn) }()

	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("front.serve: %v", err)
		}
	})

	return frontLn.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	return conn
}

// roundTrip sends req and checks that the reply relayed by the front is byte-identical to the backend's.
func roundTrip(t *testing.T, conn net.Conn, r *bufio.Reader, req []byte) {
	t.Helper()

	if _, err := conn.Write(req); err != nil {
		t.Error(err)
		return
	}
	reply, err := readMessage(r)
	if err != nil {
		t.Error(err)
		return
	}
	if want := replyTo(req); !bytes.Equal(reply, want) {
		t.Errorf("reply = %x, want %x", reply, want)
	}
}

func runClients(t *testing.T, addr string, clients, perClient int, command string) {
	t.Helper()

	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn := dial(t, addr)
			r := bufio.NewReader(conn)
			for i := range perClient {
				id := int32(c*1000 + i)
				roundTrip(t, conn, r, opMsgMessage(id, 0, 0, bodySection(bsonDoc(command, "$db"))))
			}
		}()
	}
	wg.Wait()
}

func TestFrontSerializesWrites(t *testing.T) {
	t.Parallel()

	backend := &fakeBackend{delay: 5 * time.Millisecond}
	addr := startFront(t, backend, true)

	runClients(t, addr, 10, 3, "update")

	if got := backend.maxInFlightWrites.Load(); got != 1 {
		t.Fatalf("max concurrent writes at the backend = %d, want 1", got)
	}
}

func TestFrontWithoutSerializationRunsWritesConcurrently(t *testing.T) {
	t.Parallel()

	backend := &fakeBackend{delay: 20 * time.Millisecond}
	addr := startFront(t, backend, false)

	runClients(t, addr, 10, 1, "findAndModify")

	if got := backend.maxInFlightWrites.Load(); got < 2 {
		t.Fatalf("max concurrent writes at the backend = %d, want > 1 with --no-serialize", got)
	}
}

func TestFrontDoesNotSerializeReads(t *testing.T) {
	t.Parallel()

	backend := &fakeBackend{delay: 20 * time.Millisecond}
	addr := startFront(t, backend, true)

	runClients(t, addr, 10, 1, "find")

	if got := backend.maxInFlight.Load(); got < 2 {
		t.Fatalf("max concurrent reads at the backend = %d, want > 1", got)
	}
}

func TestFrontPipelinedWrites(t *testing.T) {
	t.Parallel()

	addr := startFront(t, &fakeBackend{}, true)
	conn := dial(t, addr)
	r := bufio.NewReader(conn)

	first := opMsgMessage(1, 0, 0, bodySection(bsonDoc("insert")))
	second := opMsgMessage(2, 0, 0, bodySection(bsonDoc("delete")))
	third := opMsgMessage(3, 0, 0, bodySection(bsonDoc("find")))
	if _, err := conn.Write(bytes.Join([][]byte{first, second, third}, nil)); err != nil {
		t.Fatal(err)
	}

	for _, req := range [][]byte{first, second, third} {
		reply, err := readMessage(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(reply, replyTo(req)) {
			t.Fatalf("reply = %x, want %x", reply, replyTo(req))
		}
	}
}

func TestFrontMoreToComeReleasesLock(t *testing.T) {
	t.Parallel()

	addr := startFront(t, &fakeBackend{}, true)

	unacknowledged := dial(t, addr)
	if _, err := unacknowledged.Write(opMsgMessage(1, 0, msgFlagMoreToCome, bodySection(bsonDoc("insert")))); err != nil {
		t.Fatal(err)
	}

	conn := dial(t, addr)
	roundTrip(t, conn, bufio.NewReader(conn), opMsgMessage(2, 0, 0, bodySection(bsonDoc("update"))))
}

func TestFrontReleasesLockWhenClientDisconnects(t *testing.T) {
	t.Parallel()

	addr := startFront(t, &fakeBackend{}, true)

	dead := dial(t, addr)
	if _, err := dead.Write(opMsgMessage(1, 0, 0, bodySection(bsonDoc("update", hangKey)))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let the front take the lock
	_ = dead.Close()

	conn := dial(t, addr)
	roundTrip(t, conn, bufio.NewReader(conn), opMsgMessage(2, 0, 0, bodySection(bsonDoc("update"))))
}

func TestFrontClosesConnectionOnOversizedMessage(t *testing.T) {
	t.Parallel()

	addr := startFront(t, &fakeBackend{}, true)
	conn := dial(t, addr)

	if _, err := conn.Write(header(maxMessageSize+1, 1, 0, opMsg)); err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(conn).ReadByte(); err == nil {
		t.Fatal("connection still open after an oversized message")
	}
}
