package main

func getppidImmediate() uintptr

var immediate = func() { getppidImmediate() }
