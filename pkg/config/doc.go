// Package config reads the broker's environment once at start and fails fast with a message
// naming every bad variable. Each concern has its own loader so a function loads only what
// it uses.
package config
