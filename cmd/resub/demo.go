package main

import (
	"errors"
	"fmt"

	"resub/samples/demo"
)

func init() {
	register(&command{name: "demo", summary: "the whole 3a and 3b exchange among MNO A, B, C and the manufacturer, on embedded defaults", run: runDemo})
}

func runDemo(e *env, args []string) error {
	fs := e.newFlags("demo", "demo [--dir DIR] [--cards N] [--cards-3b N]")
	dir := fs.String("dir", "", "folder for every file of the demo (default: a new temporary folder)")
	n3a := fs.Int("cards", 10, "cards of the 3a fleet (at least 10)")
	n3b := fs.Int("cards-3b", 4, "cards of the 3b fleet")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	res, err := demo.Run(e.ctx, demo.Options{Dir: *dir, Out: e.io.out, Log: e.log, Cards3a: *n3a, Cards3b: *n3b})
	if err != nil {
		return err
	}
	if !res.OK {
		return refusedError{errors.New(fmt.Sprint("demo: not every card ended where it should: ", res.Problems))}
	}
	return nil
}
