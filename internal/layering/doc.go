// Package layering holds no code: its test enforces which of the module's
// packages may import which (doc/DESIGN.md, "Layout"). The protocol core
// (psi/protocol) must stay free of transport, storage and metrics; the
// hospital's library (party) and the coordinator service (coordinator)
// must not import each other.
package layering
