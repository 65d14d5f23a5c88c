package flake

// withNix swaps the nix runner, for tests.
func withNix(r Runner) Option { return func(o *options) { o.nix = r } }
