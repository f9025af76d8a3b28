package execution

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/nanofaas/control-plane/internal/function"
)

// The request bodies below are read the way the reference's Jackson mapper reads them, like
// FunctionSpec (see internal/function/decode.go): property names are case-sensitive, unknown
// properties are ignored, null is absent, the last of duplicate properties wins, and scalars
// are coerced ("true" → true, 5 → "5"). Raw values (input, output) alias the decoded body.

// DecodeRequest reads an InvocationRequest body (invoke/enqueue, spec-core §2.3). Input stays
// raw JSON; a missing or null input is left nil for the caller's validation. A JSON null body
// reads as an empty request. Invoke is the hot path: apart from the Request itself and the
// metadata map, this does not allocate.
func DecodeRequest(data []byte) (*Request, error) {
	req := new(Request)
	if isNullDocument(data) {
		return req, nil
	}
	obj, err := function.ReadObject(data)
	if err != nil {
		return nil, fmt.Errorf("invocation request: %w", err)
	}
	for obj.Next() {
		switch string(obj.Key()) {
		case "input":
			req.Input = nilIfNull(obj.Value())
		case "metadata":
			if req.Metadata, err = function.DecodeStringMap(obj.Value()); err != nil {
				return nil, fmt.Errorf("invocation request: metadata: %w", err)
			}
		}
	}
	return req, nil
}

// DecodeResult reads an InvocationResult callback body (spec-core §2.6, §3.9). An absent or
// null success is resolved per DECISIONS D4: success iff error is absent or null. A JSON null
// body reads as an empty result (a success with null output, by D4).
func DecodeResult(data []byte) (Result, error) {
	var res Result
	var success *bool
	if !isNullDocument(data) {
		obj, err := function.ReadObject(data)
		if err != nil {
			return Result{}, fmt.Errorf("invocation result: %w", err)
		}
		for obj.Next() {
			var err error
			switch string(obj.Key()) {
			case "success":
				success, err = function.DecodeBool(obj.Value())
			case "output":
				res.Output = nilIfNull(obj.Value())
			case "error":
				res.Error, err = decodeErrorInfo(obj.Value())
			}
			if err != nil {
				return Result{}, fmt.Errorf("invocation result: %s: %w", obj.Key(), err)
			}
		}
	}
	if success != nil {
		res.Success = *success
	} else {
		res.Success = res.Error == nil
	}
	return res, nil
}

// decodeErrorInfo reads an ErrorInfo object; null is nil, a null code or message is "".
func decodeErrorInfo(raw json.RawMessage) (*ErrorInfo, error) {
	if string(raw) == "null" {
		return nil, nil
	}
	obj, err := function.ReadObject(raw)
	if err != nil {
		return nil, err
	}
	info := new(ErrorInfo)
	for obj.Next() {
		var dst *string
		switch string(obj.Key()) {
		case "code":
			dst = &info.Code
		case "message":
			dst = &info.Message
		default:
			continue
		}
		s, err := function.DecodeString(obj.Value())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", obj.Key(), err)
		}
		*dst = ""
		if s != nil {
			*dst = *s
		}
	}
	return info, nil
}

// nilIfNull returns raw, or nil for a JSON null (Value never carries surrounding whitespace).
func nilIfNull(raw json.RawMessage) json.RawMessage {
	if string(raw) == "null" {
		return nil
	}
	return raw
}

func isNullDocument(data []byte) bool {
	return string(bytes.TrimSpace(data)) == "null"
}
