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
// # Several registries
//
// A release published to several registries is signed in each: cosign's
// tags live next to the image, so every registry needs its own. Simple
// signatures are made per registry, because their payload names the
// repository (critical.identity.docker-reference) and a containers policy
// with signedIdentity matchRepository, what `release policy` writes, refuses
// a signature that names another repository: a copied one would not verify
// for podman pulling from the mirror. Keyless, they all come from the one
// Fulcio certificate the Signer holds for the run. Attestations bind only
// the digest, which is the same in every registry, so each is made once
// per image and the same attestation (one DSSE envelope, one transparency
// log entry) is stored in every registry: a Signer remembers each
// attestation it made or, in Check or before signing, found made by its
// own identity, and stores that one wherever the same digest lacks it. The
// SBOMs, which read every layer, are computed only when some attestation is
// new. That is also how a merge puts a part into a registry it was not
// staged in: it checks the part where the build staged it, then stores the
// attestations the build job made (with its provenance) next to the copy.
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
