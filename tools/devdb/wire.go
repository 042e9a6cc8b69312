package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// MongoDB wire protocol constants used by the front.
// See https://www.mongodb.com/docs/manual/reference/mongodb-wire-protocol/.
const (
	headerLen = 16

	// maxMessageSize is MongoDB's maxMessageSizeBytes (48 MB).
	maxMessageSize = 48_000_000

	opReply      = 1
	opQuery      = 2004
	opCompressed = 2012
	opMsg        = 2013

	msgFlagChecksumPresent = 1 << 0
	msgFlagMoreToCome      = 1 << 1

	sectionBody     = 0
	sectionSequence = 1
)

// serializedCommands are the commands that must not run concurrently with each
// other, because FerretDB v1 executes them as unlocked read-then-write.
// Keys are lower-cased; command names are matched case-insensitively.
var serializedCommands = map[string]struct{}{
	"insert":           {},
	"update":           {},
	"delete":           {},
	"findandmodify":    {},
	"create":           {},
	"createindexes":    {},
	"drop":             {},
	"dropdatabase":     {},
	"dropindexes":      {},
	"renamecollection": {},
	"bulkwrite":        {},
}

// readMessage reads one complete wire message (header included) from r.
// The returned slice holds the exact bytes that were read.
func readMessage(r *bufio.Reader) ([]byte, error) {
	var lenBuf [4]byte
	if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
		return nil, err
	}

	size := int32(binary.LittleEndian.Uint32(lenBuf[:]))
	if size < headerLen || size > maxMessageSize {
		return nil, fmt.Errorf("invalid wire message length %d (allowed %d..%d)", size, headerLen, maxMessageSize)
	}

	msg := make([]byte, size)
	copy(msg, lenBuf[:])
	if _, err := io.ReadFull(r, msg[4:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}

	return msg, nil
}

// requestID returns the requestID field of a message header.
func requestID(msg []byte) int32 { return int32(binary.LittleEndian.Uint32(msg[4:8])) }

// responseTo returns the responseTo field of a message header.
func responseTo(msg []byte) int32 { return int32(binary.LittleEndian.Uint32(msg[8:12])) }

// opCode returns the opCode field of a message header.
func opCode(msg []byte) int32 { return int32(binary.LittleEndian.Uint32(msg[12:16])) }

// requestInfo describes how the front must treat a client request.
type requestInfo struct {
	// command is the command name, or "" if it could not be determined.
	command string
	// serialize is true if the request must hold the global write lock.
	serialize bool
	// expectsReply is false for OP_MSG requests with the moreToCome flag.
	expectsReply bool
}

// classifyRequest inspects a client request without modifying it.
func classifyRequest(msg []byte) requestInfo {
	switch opCode(msg) {
	case opMsg:
		return classifyOpMsg(msg)
	case opQuery:
		name, _ := opQueryCommandName(msg)
		return requestInfo{command: name, serialize: isSerializedCommand(name), expectsReply: true}
	default:
		// OP_COMPRESSED is never negotiated (FerretDB does not advertise compression);
		// legacy opcodes are rejected by FerretDB. Forward them untouched.
		return requestInfo{expectsReply: true}
	}
}

func classifyOpMsg(msg []byte) requestInfo {
	if len(msg) < headerLen+4 {
		return requestInfo{expectsReply: true}
	}

	flags := binary.LittleEndian.Uint32(msg[headerLen : headerLen+4])
	info := requestInfo{expectsReply: flags&msgFlagMoreToCome == 0}

	name, err := opMsgCommandName(msg)
	if err != nil {
		// A malformed message will be rejected by FerretDB; serialize it anyway
		// so that a parsing gap on our side can never break atomicity.
		info.serialize = true
		return info
	}

	info.command = name
	info.serialize = isSerializedCommand(name)
	return info
}

func isSerializedCommand(name string) bool {
	_, ok := serializedCommands[strings.ToLower(name)]
	return ok
}

// opMsgCommandName returns the first key of the OP_MSG body section (kind 0).
func opMsgCommandName(msg []byte) (string, error) {
	flags := binary.LittleEndian.Uint32(msg[headerLen : headerLen+4])
	end := len(msg)
	if flags&msgFlagChecksumPresent != 0 {
		end -= 4
	}

	pos := headerLen + 4
	for pos < end {
		kind := msg[pos]
		pos++

		switch kind {
		case sectionBody:
			doc, err := bsonDocument(msg[pos:end])
			if err != nil {
				return "", err
			}
			return firstKey(doc)

		case sectionSequence:
			if end-pos < 4 {
				return "", fmt.Errorf("truncated document sequence")
			}
			size := int(int32(binary.LittleEndian.Uint32(msg[pos : pos+4])))
			if size < 4 || size > end-pos {
				return "", fmt.Errorf("invalid document sequence size %d", size)
			}
			pos += size

		default:
			return "", fmt.Errorf("unknown OP_MSG section kind %d", kind)
		}
	}

	return "", fmt.Errorf("OP_MSG without body section")
}

// opQueryCommandName returns the command name of a legacy OP_QUERY on "<db>.$cmd",
// unwrapping {$query: {...}} / {query: {...}}.
func opQueryCommandName(msg []byte) (string, error) {
	pos := headerLen + 4 // flags
	if pos > len(msg) {
		return "", fmt.Errorf("truncated OP_QUERY")
	}

	nul := bytes.IndexByte(msg[pos:], 0)
	if nul < 0 {
		return "", fmt.Errorf("unterminated collection name")
	}
	collection := string(msg[pos : pos+nul])
	pos += nul + 1 + 8 // numberToSkip, numberToReturn

	if !strings.HasSuffix(collection, ".$cmd") || pos > len(msg) {
		return "", fmt.Errorf("not a command")
	}

	doc, err := bsonDocument(msg[pos:])
	if err != nil {
		return "", err
	}

	name, err := firstKey(doc)
	if err != nil {
		return "", err
	}

	if name == "$query" || name == "query" {
		inner, err := firstValueDocument(doc)
		if err != nil {
			return "", err
		}
		return firstKey(inner)
	}

	return name, nil
}

// bsonDocument returns the BSON document at the start of b, bounded by its length prefix.
func bsonDocument(b []byte) ([]byte, error) {
	if len(b) < 5 {
		return nil, fmt.Errorf("truncated BSON document")
	}

	size := int(int32(binary.LittleEndian.Uint32(b[:4])))
	if size < 5 || size > len(b) {
		return nil, fmt.Errorf("invalid BSON document size %d", size)
	}

	return b[:size], nil
}

// firstKey returns the name of the first element of a BSON document.
func firstKey(doc []byte) (string, error) {
	if len(doc) < 6 || doc[4] == 0 {
		return "", fmt.Errorf("empty BSON document")
	}

	nul := bytes.IndexByte(doc[5:], 0)
	if nul < 0 {
		return "", fmt.Errorf("unterminated BSON key")
	}

	return string(doc[5 : 5+nul]), nil
}

// firstValueDocument returns the value of the first element, which must be an embedded document.
func firstValueDocument(doc []byte) ([]byte, error) {
	const bsonTypeDocument = 0x03
	if doc[4] != bsonTypeDocument {
		return nil, fmt.Errorf("first element is not a document")
	}

	nul := bytes.IndexByte(doc[5:], 0)
	if nul < 0 {
		return nil, fmt.Errorf("unterminated BSON key")
	}

	return bsonDocument(doc[5+nul+1:])
}
