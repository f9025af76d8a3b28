package main

import (
	"cmp"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Tokenization follows the reference's word-stats (functions/java/word-stats and
// functions/go/word-stats): lower-case the text, delete every character that is neither a letter
// (\p{L}), a number (\p{N}) nor ASCII whitespace, then split on ASCII whitespace. Punctuation
// therefore joins its neighbours ("don't" → "dont", "e-mail" → "email") rather than splitting
// them. Choices where the references differ or are loose:
//   - ties in topWords are broken by the word in ascending code-point order (the reference Go
//     function does the same; Java leaves them in hash order);
//   - word length counts characters (runes); Java counts UTF-16 units, the reference Go bytes;
//   - text that starts with whitespace yields no empty first word (a Java String.split quirk);
//   - averageWordLength is rounded half up to two decimals, as in Java (Math.round).

// Domain errors, returned inside a successful output as {"error": msg} (runtime-contract §1.4).
const (
	errNoText  = "Field 'text' is required and must be non-empty"
	errNoWords = "No words found in input"
	errTopN    = "Field 'topN' must be a number"

	defaultTopN = 10
)

// Stats is the function's output.
type Stats struct {
	WordCount         int         `json:"wordCount"`
	UniqueWords       int         `json:"uniqueWords"`
	TopWords          []WordCount `json:"topWords"`
	AverageWordLength float64     `json:"averageWordLength"`
}

// WordCount is one entry of Stats.TopWords.
type WordCount struct {
	Word  string `json:"word"`
	Count int    `json:"count"`
}

// Failure is a domain error output.
type Failure struct {
	Error string `json:"error"`
}

// Analyze computes the statistics of input ({"text","topN"} or a bare string); the result is a
// Stats or a Failure.
func Analyze(input json.RawMessage) any {
	text, topN, msg := parseInput(input)
	if msg != "" {
		return Failure{Error: msg}
	}
	words := tokenize(text)
	if len(words) == 0 {
		return Failure{Error: errNoWords}
	}
	return summarize(words, topN)
}

func parseInput(input json.RawMessage) (text string, topN int, failure string) {
	var v any
	_ = json.Unmarshal(input, &v) // invalid or null input simply has no text
	topN = defaultTopN
	var rawTopN any
	switch x := v.(type) {
	case string:
		text = x
	case map[string]any:
		text, _ = x["text"].(string)
		rawTopN = x["topN"]
	}
	if strings.TrimSpace(text) == "" {
		return "", 0, errNoText
	}
	switch n := rawTopN.(type) {
	case nil:
	case float64:
		// Truncated like Java's Number.intValue; a negative topN lists no words.
		topN = int(math.Max(0, math.Min(n, math.MaxInt32)))
	default:
		return "", 0, errTopN
	}
	return text, topN, ""
}

func tokenize(text string) []string {
	var words []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			words = append(words, cur.String())
			cur.Reset()
		}
	}
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ', r == '\t', r == '\n', r == '\v', r == '\f', r == '\r':
			flush()
		case unicode.IsLetter(r), unicode.IsNumber(r):
			cur.WriteRune(r)
		}
	}
	flush()
	return words
}

func summarize(words []string, topN int) Stats {
	freq := make(map[string]int, len(words))
	chars := 0
	for _, w := range words {
		freq[w]++
		chars += utf8.RuneCountInString(w)
	}
	counts := make([]WordCount, 0, len(freq))
	for w, c := range freq {
		counts = append(counts, WordCount{Word: w, Count: c})
	}
	slices.SortFunc(counts, func(a, b WordCount) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return strings.Compare(a.Word, b.Word)
	})
	avg := float64(chars) / float64(len(words))
	return Stats{
		WordCount:         len(words),
		UniqueWords:       len(freq),
		TopWords:          counts[:min(topN, len(counts))],
		AverageWordLength: math.Floor(avg*100+0.5) / 100,
	}
}
