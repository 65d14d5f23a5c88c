// Package sign owns the supply-chain evidence of a release: cosign
// signatures on every pushed per-arch manifest and index, a CycloneDX 1.6 SBOM and
// a SLSA v1 provenance attestation on every per-arch image, and the checks
// that prove them (Verify, behind `release verify`).
//
// cosign v2 is used as a library behind Signer; nothing shells out to a
// cosign binary. A Signer works on one record.Image at a time, so that an
// image is signed in the job that built it, and Check lets another job (the
// merge) prove a part was signed by the same identity before it is indexed.
//
// # Where signatures live
//
// Signatures and attestations are stored with cosign's classic tag scheme:
// the signature image of a manifest with digest sha256:abc is the tag
// sha256-abc.sig in the same repository, its attestations are sha256-abc.att.
// That is the one scheme both the cosign v2 and v3 CLIs read from a registry
// that has no OCI referrers API (GHCR has none), so users verify with stock
// cosign and nothing on the registry side has to change. The newer Sigstore
// bundle format is stored as a referrer, which GHCR would only emulate with
// fallback tags that cosign v2 does not read.
//
// # Idempotence
//
// Before signing a subject, its existing signatures and attestations are
// read; one made by the same key (key mode) or the same certificate identity
// and issuer under the same CA (keyless) that covers the same digest counts
// as done. An unchanged release therefore writes no tag and no transparency
// log entry. Attestations are matched by predicate type, not by content: a
// re-run provenance differs only in run metadata and is not worth a new entry.
package sign
