//go:build !amd64

package main

var immediate func()
