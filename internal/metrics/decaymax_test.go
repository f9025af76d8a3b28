package metrics

import (
	"testing"
	"time"
)

func TestDecayingMax_FollowsMicrometerRotation(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	type step struct {
		at     time.Duration // offset from t0
		record time.Duration // 0 = poll only
		want   time.Duration
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "sample visible for two full intervals then gone after the third rotation",
			steps: []step{
				{at: 0, record: 3 * time.Second, want: 3 * time.Second},
				{at: 59 * time.Second, want: 3 * time.Second},
				{at: 60 * time.Second, want: 3 * time.Second},
				{at: 119 * time.Second, want: 3 * time.Second},
				{at: 120 * time.Second, want: 3 * time.Second},
				{at: 179 * time.Second, want: 3 * time.Second},
				{at: 180 * time.Second, want: 0},
			},
		},
		{
			name: "smaller later sample survives the larger earlier one",
			steps: []step{
				{at: 0, record: 5 * time.Second, want: 5 * time.Second},
				{at: 90 * time.Second, record: time.Second, want: 5 * time.Second},
				{at: 180 * time.Second, want: time.Second},
				{at: 239 * time.Second, want: time.Second},
				{at: 240 * time.Second, want: 0},
			},
		},
		{
			name: "larger sample raises the current max immediately",
			steps: []step{
				{at: 0, record: time.Second, want: time.Second},
				{at: 10 * time.Second, record: 2 * time.Second, want: 2 * time.Second},
				{at: 20 * time.Second, record: time.Second, want: 2 * time.Second},
			},
		},
		{
			name: "idle gap of three intervals or more clears everything at once",
			steps: []step{
				{at: 0, record: 4 * time.Second, want: 4 * time.Second},
				{at: 10 * time.Minute, want: 0},
				{at: 10*time.Minute + time.Second, record: 2 * time.Second, want: 2 * time.Second},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewDecayingMax(t0)
			for _, s := range tt.steps {
				now := t0.Add(s.at)
				if s.record > 0 {
					m.Record(s.record, now)
				}
				if got := m.Poll(now); got != s.want {
					t.Fatalf("at +%v: max = %v, want %v", s.at, got, s.want)
				}
			}
		})
	}
}

func TestDecayingMax_ClockGoingBackwardsDoesNotRotate(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	var m DecayingMax
	m.Init(t0)
	m.Record(time.Second, t0)
	if got := m.Poll(t0.Add(-time.Hour)); got != time.Second {
		t.Fatalf("max = %v, want 1s", got)
	}
}

func TestDecayingMax_RotatesOneBucketPerInterval(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	w := NewDecayingMax(now)
	w.Record(3*time.Second, now)
	now = now.Add(90 * time.Second) // one rotation
	w.Record(time.Second, now)
	if got := w.Poll(now); got != 3*time.Second {
		t.Fatalf("after one rotation = %v, want 3s", got)
	}
	now = now.Add(60 * time.Second) // second rotation: the bucket holding only 3s is now current
	if got := w.Poll(now); got != 3*time.Second {
		t.Fatalf("after two rotations = %v, want 3s", got)
	}
	now = now.Add(60 * time.Second) // third rotation: only the 1s sample remains
	if got := w.Poll(now); got != time.Second {
		t.Fatalf("after three rotations = %v, want 1s", got)
	}
}
