package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// bsonDoc builds a BSON document whose elements are int32 1 under the given keys.
func bsonDoc(keys ...string) []byte {
	var body []byte
	for _, k := range keys {
		body = append(body, 0x10) // int32
		body = append(body, k...)
		body = append(body, 0)
		body = binary.LittleEndian.AppendUint32(body, 1)
	}
	return finishDoc(body)
}

// bsonWrap builds {key: inner}.
func bsonWrap(key string, inner []byte) []byte {
	body := append([]byte{0x03}, key...)
	body = append(body, 0)
	body = append(body, inner...)
	return finishDoc(body)
}

func finishDoc(body []byte) []byte {
	doc := binary.LittleEndian.AppendUint32(nil, uint32(len(body)+5))
	doc = append(doc, body...)
	return append(doc, 0)
}

func header(size int, reqID, respTo, op int32) []byte {
	h := binary.LittleEndian.AppendUint32(nil, uint32(size))
	h = binary.LittleEndian.AppendUint32(h, uint32(reqID))
	h = binary.LittleEndian.AppendUint32(h, uint32(respTo))
	return binary.LittleEndian.AppendUint32(h, uint32(op))
}

func bodySection(doc []byte) []byte { return append([]byte{sectionBody}, doc...) }

func seqSection(id string, docs ...[]byte) []byte {
	var payload []byte
	payload = append(payload, id...)
	payload = append(payload, 0)
	for _, d := range docs {
		payload = append(payload, d...)
	}
	s := []byte{sectionSequence}
	s = binary.LittleEndian.AppendUint32(s, uint32(len(payload)+4))
	return append(s, payload...)
}

func opMsgMessage(reqID, respTo int32, flags uint32, sections ...[]byte) []byte {
	body := binary.LittleEndian.AppendUint32(nil, flags)
	for _, s := range sections {
		body = append(body, s...)
	}
	if flags&msgFlagChecksumPresent != 0 {
		body = append(body, 0xde, 0xad, 0xbe, 0xef)
	}
	return append(header(headerLen+len(body), reqID, respTo, opMsg), body...)
}

func opQueryMessage(reqID int32, collection string, query []byte) []byte {
	body := binary.LittleEndian.AppendUint32(nil, 0)
	body = append(body, collection...)
	body = append(body, 0)
	body = binary.LittleEndian.AppendUint32(body, 0)
	body = binary.LittleEndian.AppendUint32(body, 0xffffffff)
	body = append(body, query...)
	return append(header(headerLen+len(body), reqID, 0, opQuery), body...)
}

func TestClassifyRequest(t *testing.T) {
	t.Parallel()

	for name, tc := range map[string]struct {
		msg       []byte
		command   string
		serialize bool
		reply     bool
	}{
		"find": {
			msg:     opMsgMessage(1, 0, 0, bodySection(bsonDoc("find", "$db"))),
			command: "find", serialize: false, reply: true,
		},
		"insert with sequence before body": {
			msg: opMsgMessage(1, 0, 0,
				seqSection("documents", bsonDoc("a"), bsonDoc("b")),
				bodySection(bsonDoc("insert", "$db"))),
			command: "insert", serialize: true, reply: true,
		},
		"update with sequence after body and checksum": {
			msg: opMsgMessage(1, 0, msgFlagChecksumPresent,
				bodySection(bsonDoc("update", "$db")),
				seqSection("updates", bsonDoc("q", "u"))),
			command: "update", serialize: true, reply: true,
		},
		"findAndModify": {
			msg:     opMsgMessage(1, 0, 0, bodySection(bsonDoc("findAndModify"))),
			command: "findAndModify", serialize: true, reply: true,
		},
		"legacy lower-case findandmodify": {
			msg:     opMsgMessage(1, 0, 0, bodySection(bsonDoc("findandmodify"))),
			command: "findandmodify", serialize: true, reply: true,
		},
		"unacknowledged delete": {
			msg:     opMsgMessage(1, 0, msgFlagMoreToCome, bodySection(bsonDoc("delete"))),
			command: "delete", serialize: true, reply: false,
		},
		"createIndexes": {
			msg:     opMsgMessage(1, 0, 0, bodySection(bsonDoc("createIndexes"))),
			command: "createIndexes", serialize: true, reply: true,
		},
		"malformed OP_MSG is serialized": {
			msg:       opMsgMessage(1, 0, 0, []byte{7, 1, 2, 3}),
			serialize: true, reply: true,
		},
		"OP_QUERY hello": {
			msg:     opQueryMessage(1, "admin.$cmd", bsonDoc("hello")),
			command: "hello", serialize: false, reply: true,
		},
		"OP_QUERY insert": {
			msg:     opQueryMessage(1, "app.$cmd", bsonDoc("insert", "documents")),
			command: "insert", serialize: true, reply: true,
		},
		"OP_QUERY wrapped delete": {
			msg:     opQueryMessage(1, "app.$cmd", bsonWrap("$query", bsonDoc("delete"))),
			command: "delete", serialize: true, reply: true,
		},
		"OP_QUERY on a collection": {
			msg:       opQueryMessage(1, "app.items", bsonDoc("insert")),
			serialize: false, reply: true,
		},
		"other opcode": {
			msg:       header(headerLen, 1, 0, opCompressed),
			serialize: false, reply: true,
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()

			got := classifyRequest(tc.msg)
			if got.command != tc.command || got.serialize != tc.serialize || got.expectsReply != tc.reply {
				t.Fatalf("classifyRequest() = %+v, want command=%q serialize=%v expectsReply=%v",
					got, tc.command, tc.serialize, tc.reply)
			}
		})
	}
}

func TestReadMessage(t *testing.T) {
	t.Parallel()

	first := opMsgMessage(7, 0, 0, bodySection(bsonDoc("ping")))
	second := opMsgMessage(8, 0, 0, bodySection(bsonDoc("insert")))
	r := bufio.NewReader(bytes.NewReader(append(append([]byte{}, first...), second...)))

	for _, want := range [][]byte{first, second} {
		got, err := readMessage(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("readMessage() = %x, want %x", got, want)
		}
	}

	if requestID(first) != 7 || opCode(first) != opMsg || responseTo(first) != 0 {
		t.Fatalf("bad header accessors")
	}
}

func TestReadMessageRejectsBadLengths(t *testing.T) {
	t.Parallel()

	for _, size := range []int{0, 15, maxMessageSize + 1} {
		msg := header(size, 1, 0, opMsg)
		_, err := readMessage(bufio.NewReader(bytes.NewReader(msg)))
		if err == nil || !strings.Contains(err.Error(), "invalid wire message length") {
			t.Fatalf("size %d: err = %v", size, err)
		}
	}

	truncated := opMsgMessage(1, 0, 0, bodySection(bsonDoc("ping")))
	if _, err := readMessage(bufio.NewReader(bytes.NewReader(truncated[:20]))); err == nil {
		t.Fatal("truncated message was accepted")
	}
}
