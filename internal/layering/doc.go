// Package layering holds no code: its test enforces the allowed
// dependency directions between spofwatch's packages (docs/ARCHITECTURE.md,
// "Dependency directions").
package layering
