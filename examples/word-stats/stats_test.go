package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/nanofaas/control-plane/fnruntime"
)

func TestAnalyze(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  any
	}{
		{
			name:  "counts words and ranks ties alphabetically",
			input: `{"text":"The cat and the hat.","topN":3}`,
			want: Stats{WordCount: 5, UniqueWords: 4, AverageWordLength: 3,
				TopWords: []WordCount{{"the", 2}, {"and", 1}, {"cat", 1}}},
		},
		{
			name:  "bare string input, default topN of 10",
			input: `"b a c b"`,
			want: Stats{WordCount: 4, UniqueWords: 3, AverageWordLength: 1,
				TopWords: []WordCount{{"b", 2}, {"a", 1}, {"c", 1}}},
		},
		{
			name:  "punctuation is deleted, not a separator",
			input: `{"text":"Don't re-use e-mail!"}`,
			want: Stats{WordCount: 3, UniqueWords: 3, AverageWordLength: 4.67,
				TopWords: []WordCount{{"dont", 1}, {"email", 1}, {"reuse", 1}}},
		},
		{
			name:  "unicode letters and numbers, length in characters",
			input: `{"text":"Über café\tÜBER\n42"}`,
			want: Stats{WordCount: 4, UniqueWords: 3, AverageWordLength: 3.5,
				TopWords: []WordCount{{"über", 2}, {"42", 1}, {"café", 1}}},
		},
		{
			name:  "average rounded half up to two decimals",
			input: `{"text":"a bb bb","topN":1}`,
			want:  Stats{WordCount: 3, UniqueWords: 2, AverageWordLength: 1.67, TopWords: []WordCount{{"bb", 2}}},
		},
		{
			name:  "topN zero and negative list nothing",
			input: `{"text":"x y","topN":-2}`,
			want:  Stats{WordCount: 2, UniqueWords: 2, AverageWordLength: 1, TopWords: []WordCount{}},
		},
		{
			name:  "fractional topN is truncated",
			input: `{"text":"x y z","topN":2.9}`,
			want:  Stats{WordCount: 3, UniqueWords: 3, AverageWordLength: 1, TopWords: []WordCount{{"x", 1}, {"y", 1}}},
		},
		{"missing text", `{"topN":3}`, Failure{errNoText}},
		{"blank text", `{"text":"  \n "}`, Failure{errNoText}},
		{"text not a string", `{"text":42}`, Failure{errNoText}},
		{"input not an object or string", `[1,2]`, Failure{errNoText}},
		{"null input", `null`, Failure{errNoText}},
		{"only punctuation", `{"text":"!!! ... ?"}`, Failure{errNoWords}},
		{"topN not a number", `{"text":"a","topN":"5"}`, Failure{errTopN}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Analyze(json.RawMessage(tt.input))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Analyze(%s) = %+v, want %+v", tt.input, got, tt.want)
			}
		})
	}
}

func TestAnalyze_OutputShape(t *testing.T) {
	out, err := json.Marshal(Analyze(json.RawMessage(`{"text":"go go gopher","topN":1}`)))
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"wordCount":3,"uniqueWords":2,"topWords":[{"word":"go","count":2}],"averageWordLength":3.33}`
	if string(out) != want {
		t.Errorf("JSON = %s, want %s", out, want)
	}
}

// TestAnalyze_LoadProfilePayload uses the shape the reference's k6 word-stats profile sends.
func TestAnalyze_LoadProfilePayload(t *testing.T) {
	in := `{"text":"The quick fox runs fast. The quick fox runs fast. The lazy dog sleeps quietly.","topN":3}`
	got, ok := Analyze(json.RawMessage(in)).(Stats)
	if !ok || got.WordCount != 15 {
		t.Fatalf("got %+v, want 15 words", got)
	}
	want := []WordCount{{"the", 3}, {"fast", 2}, {"fox", 2}}
	if !reflect.DeepEqual(got.TopWords, want) {
		t.Errorf("topWords = %v, want %v", got.TopWords, want)
	}
}

func TestHandle_ServedByRuntime(t *testing.T) {
	rt := fnruntime.New(handle, fnruntime.Config{}, fnruntime.WithLogger(slog.New(slog.DiscardHandler)))
	defer rt.Close(context.Background())
	req := httptest.NewRequest(http.MethodPost, "/invoke", strings.NewReader(`{"input":{"text":"hi hi"},"metadata":null}`))
	req.Header.Set("X-Execution-Id", "e-1")
	rec := httptest.NewRecorder()
	rt.ServeHTTP(rec, req)
	const want = `{"wordCount":2,"uniqueWords":1,"topWords":[{"word":"hi","count":2}],"averageWordLength":2}`
	if rec.Code != http.StatusOK || rec.Body.String() != want {
		t.Errorf("got %d %s, want 200 %s", rec.Code, rec.Body, want)
	}
}
