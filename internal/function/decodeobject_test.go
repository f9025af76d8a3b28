package function

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// properties reads every property of data as "key=value" pairs, in document order.
func properties(t *testing.T, data string) []string {
	t.Helper()
	obj, err := ReadObject([]byte(data))
	if err != nil {
		t.Fatalf("ReadObject(%s): %v", data, err)
	}
	var got []string
	for obj.Next() {
		got = append(got, string(obj.Key())+"="+string(obj.Value()))
	}
	if obj.Next() {
		t.Fatalf("Next is true again after the end of %s", data)
	}
	return got
}

func TestReadObject_WalksPropertiesInDocumentOrder(t *testing.T) {
	tests := []struct {
		name string
		data string
		want []string
	}{
		{"empty object", `{}`, nil},
		{"empty object with blanks", " \t\r\n{ \n } \n", nil},
		{"scalars", `{"s":"x","n":-1.5e3,"t":true,"f":false,"z":null}`,
			[]string{`s="x"`, `n=-1.5e3`, `t=true`, `f=false`, `z=null`}},
		{"whitespace everywhere", "\n{ \"a\" :\t1 ,\r\n \"b\"\n:\n[ 1 , 2 ] }\n",
			[]string{`a=1`, `b=[ 1 , 2 ]`}},
		{"nested values are raw and whole", `{"o":{"a":{"b":[{},[]]}},"after":1}`,
			[]string{`o={"a":{"b":[{},[]]}}`, `after=1`}},
		{"brackets and quotes inside strings", `{"s":"}]{[\"","o":{"k":"}\\"},"n":0}`,
			[]string{`s="}]{[\""`, `o={"k":"}\\"}`, `n=0`}},
		{"escaped keys are unescaped", `{"in\u0070ut":1,"a\"b":2,"c\\":3,"\u00e9":4}`,
			[]string{`input=1`, `a"b=2`, `c\=3`, `é=4`}},
		{"keys are exact", `{"INPUT":1,"Input":2,"input":3}`,
			[]string{`INPUT=1`, `Input=2`, `input=3`}},
		{"duplicate keys are all reported in order", `{"a":1,"b":2,"a":null,"a":"last"}`,
			[]string{`a=1`, `b=2`, `a=null`, `a="last"`}},
		{"empty key", `{"":1}`, []string{`=1`}},
		{"escaped slash in key", `{"a\/b":1}`, []string{`a/b=1`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := properties(t, tc.data); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("properties = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReadObject_RejectsInvalidJSONAndNonObjects(t *testing.T) {
	for _, data := range []string{``, ` `, `null`, `[]`, `[{"a":1}]`, `"{}"`, `1`, `true`,
		`{`, `{"a":}`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `{"a":1} {}`, `{"a":1} x`, `{'a':1}`,
		`{"a":"` + "\x01" + `"}`, `{"a":tru}`} {
		t.Run(data, func(t *testing.T) {
			obj, err := ReadObject([]byte(data))
			if err == nil {
				t.Fatal("no error")
			}
			if obj.Next() {
				t.Fatal("the reader of a rejected document has properties")
			}
		})
	}
}

func TestReadObject_ZeroReaderHasNoProperties(t *testing.T) {
	var obj ObjectReader
	if obj.Next() || obj.Key() != nil || obj.Value() != nil {
		t.Fatal("zero ObjectReader has a property")
	}
}

// The invoke hot path relies on the walker not allocating; only an escaped key may.
func TestReadObject_DoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts vary under the race detector")
	}
	data := []byte(`{"input":{"message":"hello \"you\"","n":[1,2,{"x":null}]},"metadata":{"k":"v"},"x":true}`)
	n := 0
	allocs := testing.AllocsPerRun(100, func() {
		obj, err := ReadObject(data)
		if err != nil {
			t.Fatal(err)
		}
		n = 0
		for obj.Next() {
			switch string(obj.Key()) {
			case "input", "metadata":
				n++
			}
		}
	})
	if allocs != 0 || n != 2 {
		t.Fatalf("allocs = %v (want 0), matched %d keys (want 2)", allocs, n)
	}
}

// A large raw value is sliced, not copied: Value aliases the document.
func TestReadObject_ValueAliasesTheDocument(t *testing.T) {
	big := `"` + strings.Repeat("x", 1<<16) + `"`
	data := []byte(`{"input":` + big + `}`)
	obj, err := ReadObject(data)
	if err != nil || !obj.Next() {
		t.Fatalf("ReadObject: %v", err)
	}
	v := obj.Value()
	if string(v) != big || &v[0] != &data[len(`{"input":`)] {
		t.Fatal("value is not the document's own bytes")
	}
}

func TestDecodeStringMap_JacksonSemantics(t *testing.T) {
	tests := []struct {
		raw     string
		want    map[string]string
		wantErr bool
	}{
		{`null`, nil, false},
		{`{}`, map[string]string{}, false},
		{`{"a":"x","b":1,"c":1.50,"d":true,"e":null,"f":"\u00e9\n"}`,
			map[string]string{"a": "x", "b": "1", "c": "1.50", "d": "true", "e": "", "f": "é\n"}, false},
		{`{"K":"upper","k":"lower"}`, map[string]string{"K": "upper", "k": "lower"}, false},
		{`{"k":"first","k":"last"}`, map[string]string{"k": "last"}, false},
		{`{"k\u0031":"v"}`, map[string]string{"k1": "v"}, false},
		{`{"k":{}}`, nil, true},
		{`{"k":["v"]}`, nil, true},
		{`["k"]`, nil, true},
		{`"k"`, nil, true},
		{`""`, nil, true},
		{`1`, nil, true},
		{`{"k":"v"`, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			got, err := DecodeStringMap(json.RawMessage(tc.raw))
			if (err != nil) != tc.wantErr || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("DecodeStringMap = %v, %v; want %v, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestDecodeString_PlainAndEscapedStrings(t *testing.T) {
	tests := []struct {
		raw, want string
		wantErr   bool
	}{
		{`"plain"`, "plain", false},
		{`""`, "", false},
		{`"tab\there"`, "tab\there", false},
		{`"\u00e9t\u00e9"`, "été", false},
		{`"été"`, "été", false},
		{"\"\xff\"", "\uFFFD", false}, // invalid UTF-8 is replaced, as encoding/json and Java do
		{"\"a\x01\"", "", true},       // a raw control character is invalid JSON
		{`"a"b"`, "", true},
		{`"unterminated`, "", true},
	}
	for _, tc := range tests {
		got, err := DecodeString(json.RawMessage(tc.raw))
		if tc.wantErr {
			if err == nil {
				t.Errorf("DecodeString(%q) = %q, want an error", tc.raw, *got)
			}
			continue
		}
		if err != nil || got == nil || *got != tc.want {
			t.Errorf("DecodeString(%q) = %v, %v; want %q", tc.raw, got, err, tc.want)
		}
	}
}

// Jackson assigns duplicate properties in order, so the last one wins, and a later null resets
// an earlier value to absent.
func TestDecodeSpec_DuplicatePropertiesLastWins(t *testing.T) {
	got, err := DecodeSpec([]byte(`{"name":"a","name":"b","image":"i","image":null,"timeoutMs":5,"timeoutMs":null,
		"concurrency":null,"concurrency":"7","resources":{"cpu":"1"},"resources":null,"env":{"A":"1"},"env":{"B":"2"},
		"command":["x"],"command":null,"executionMode":"POOL","executionMode":null,
		"scalingConfig":{"metrics":[{"type":"cpu"}],"metrics":null,"concurrencyControl":{"highLoadThreshold":0.5,"highLoadThreshold":null}}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{Name: "b", Concurrency: ptr(7), Env: map[string]string{"B": "2"},
		ScalingConfig: &ScalingConfig{ConcurrencyControl: &ConcurrencyControlConfig{}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestDecodeSpec_EscapedPropertyNamesMatch(t *testing.T) {
	got, err := DecodeSpec([]byte(`{"n\u0061me":"fn","\u0069mage":"i","timeout\u004ds":"9"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "fn" || got.Image != "i" || got.TimeoutMs == nil || *got.TimeoutMs != 9 {
		t.Fatalf("got %+v", got)
	}
}
