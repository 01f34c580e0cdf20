package labs

import "testing"

func TestParseReferenceRange(t *testing.T) {
	tests := []struct {
		name      string
		text      string
		unit      string
		low, high *float64
	}{
		{name: "a-b", text: "3.5-5.0", low: fptr(3.5), high: fptr(5)},
		{name: "a - b", text: "3.5 - 5.0", low: fptr(3.5), high: fptr(5)},
		{name: "negative bounds", text: "-5--1", low: fptr(-5), high: fptr(-1)},
		{name: "less than", text: "<10", high: fptr(10)},
		{name: "at most with a space", text: "<= 10", high: fptr(10)},
		{name: "more than", text: ">5", low: fptr(5)},
		{name: "at least", text: ">=0.5", low: fptr(0.5)},
		{name: "the value's unit after", text: "<10 ug/dl", unit: "ug/dl", high: fptr(10)},
		{name: "the value's unit in another case", text: "<10 ug/dL", unit: "ug/dl", high: fptr(10)},
		{name: "range with the value's unit", text: "3.5-5.0 mmol/L", unit: "mmol/L", low: fptr(3.5), high: fptr(5)},
		{name: "another unit", text: "<10 mg/dl", unit: "ug/dl"},
		{name: "a unit when the value has none", text: "<10 ug/dl"},
		{name: "unit glued to the number is not stripped", text: "3-51", unit: "1", low: fptr(3), high: fptr(51)},
		{name: "text before", text: "approx 3-5"},
		{name: "text after", text: "3-5 adults"},
		{name: "reversed", text: "10-5"},
		{name: "one number", text: "5"},
		{name: "words", text: "negative"},
		{name: "two decimal points", text: "1.2.3-4"},
		{name: "empty", text: ""},
		{name: "comparator alone", text: "<"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			low, high := ParseReferenceRange(tt.text, tt.unit)
			deq(t, "low", low, tt.low)
			deq(t, "high", high, tt.high)
		})
	}
}
