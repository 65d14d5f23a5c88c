// Package sign owns the supply-chain evidence of a release: cosign
// signatures on every pushed per-arch manifest and index, a CycloneDX 1.6
// and an SPDX 2.3 SBOM and a SLSA v1 provenance attestation on every
// per-arch image, and the checks that prove them (Verify, behind `release
// verify`, and Signer.Check, what a merge demands of a part).
//
// Sigstore's libraries do the security work: cosign's pkg/cosign checks
// every signature and attestation, whoever asks, and keyless signing gets
// its certificate from Fulcio through sigstore-go's client, for the OIDC
// token cosign's GitHub Actions provider fetches.
//
// # Where signatures live
//
// With cosign's classic tag scheme: the signatures of the manifest
// sha256:abc are the tag sha256-abc.sig in its repository, its
// attestations sha256-abc.att. The cosign v2 and v3 CLIs both read that
// from a registry without the OCI referrers API (GHCR has none).
//
// # Several registries
//
// Simple signatures are made per registry, because their payload names the
// repository and a containers policy with signedIdentity matchRepository
// (what `release policy` writes) refuses one that names another. Keyless,
// they all come from the Signer's one Fulcio certificate. Attestations bind
// only the digest, so each is made once per image and the same one (one
// DSSE envelope, one log entry) is stored in every registry: a Signer
// remembers each attestation it made, or found made by its own identity,
// and stores that one wherever the same digest lacks it. That is also how
// a merge puts a part into a registry it was not staged in, with the
// provenance the build made.
//
// # Idempotence
//
// A signature or attestation (matched by predicate type) that the Signer's
// own identity already made for the digest counts as done, so an unchanged
// release writes no tag and no transparency log entry.
package sign
