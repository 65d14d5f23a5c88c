package sign

// modeOf is how s signs, for the tests of New's choice.
func modeOf(s Signer) Mode {
	if s, ok := s.(*signer); ok {
		return s.mode
	}
	return ModeOff
}
