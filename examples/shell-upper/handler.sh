#!/bin/sh
# shell-upper: a nanofaas STDIO handler in POSIX sh + awk (no jq).
#
# The runtime writes the request {"input": ..., "metadata": ...} to stdin; this prints exactly
# one JSON document on stdout and exits 0:
#   input is a string  -> {"upper":"<input with ASCII letters upper-cased>"}
#   anything else      -> {"error":"Field 'input' must be a JSON string"}   (domain error)
# A request that is not a JSON object is a failure: a message on stderr and exit status 1.
#
# Escape sequences inside the string (\n, \", \u00e9, ...) are copied unchanged, so the output
# is valid JSON whatever the input; non-ASCII characters pass through untouched.

LC_ALL=C
export LC_ALL

exec awk '
{ doc = doc $0 "\n" }

function fail(msg) { print "handler.sh: " msg | "cat 1>&2"; exit 1 }

function skip_ws() { while (pos <= n && index(" \t\r\n", substr(doc, pos, 1)) > 0) pos++ }

# scan_string: pos is on the opening quote; returns the raw text between the quotes (escapes
# kept) and leaves pos after the closing quote.
function scan_string(   start, c) {
	pos++
	start = pos
	while (pos <= n) {
		c = substr(doc, pos, 1)
		if (c == "\\") { pos += 2; continue }
		if (c == "\"") { pos++; return substr(doc, start, pos - 1 - start) }
		pos++
	}
	fail("unterminated string")
}

# skip_value: skips any JSON value starting at pos (nesting tracked, strings honoured).
function skip_value(   c, depth) {
	c = substr(doc, pos, 1)
	if (c == "\"") { scan_string(); return }
	if (c != "{" && c != "[") {
		while (pos <= n && index(",}] \t\r\n", substr(doc, pos, 1)) == 0) pos++
		return
	}
	depth = 0
	while (pos <= n) {
		c = substr(doc, pos, 1)
		if (c == "\"") { scan_string(); continue }
		if (c == "{" || c == "[") depth++
		else if (c == "}" || c == "]") { depth--; if (depth == 0) { pos++; return } }
		pos++
	}
	fail("unterminated value")
}

# upper: upper-cases raw string text outside escape sequences, a run at a time.
function upper(s,   out, i) {
	out = ""
	while ((i = index(s, "\\")) > 0) {
		out = out toupper(substr(s, 1, i - 1))
		if (substr(s, i + 1, 1) == "u") { out = out substr(s, i, 6); s = substr(s, i + 6) }
		else { out = out substr(s, i, 2); s = substr(s, i + 2) }
	}
	return out toupper(s)
}

END {
	n = length(doc); pos = 1
	skip_ws()
	if (substr(doc, pos, 1) != "{") fail("request is not a JSON object")
	pos++
	kind = "absent"
	for (;;) {
		skip_ws()
		c = substr(doc, pos, 1)
		if (c == "}") break
		if (c != "\"") fail("malformed request")
		key = scan_string()
		skip_ws()
		if (substr(doc, pos, 1) != ":") fail("malformed request")
		pos++
		skip_ws()
		if (key == "input" && substr(doc, pos, 1) == "\"") { value = scan_string(); kind = "string" }
		else { if (key == "input") kind = "other"; skip_value() }
		skip_ws()
		c = substr(doc, pos, 1)
		if (c == ",") { pos++; continue }
		if (c == "}") break
		fail("malformed request")
	}
	if (kind == "string") printf "{\"upper\":\"%s\"}\n", upper(value)
	else print "{\"error\":\"Field '\''input'\'' must be a JSON string\"}"
}
'
