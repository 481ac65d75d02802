//go:build !race

package ota

const raceEnabled = false
