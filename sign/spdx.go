package sign

import (
	"cmp"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"
)

// noAssertion is SPDX's "this document does not say".
const noAssertion = "NOASSERTION"

// spdxCreator is the tool named as creator and annotator.
var spdxCreator = common.Creator{CreatorType: "Tool", Creator: "agent-images-release"}

// spdx is the SPDX 2.3 document of one image. It says what the CycloneDX
// document says: the document DESCRIBES the image, which CONTAINS the agent
// and every store path; purls are external references, hashes checksums,
// and each CycloneDX property an annotation "name: value".
func (in sbomInput) spdx() *spdx.Document {
	created := in.created.Format(time.RFC3339)
	annotate := func(props []property) []spdx.Annotation {
		out := make([]spdx.Annotation, len(props))
		for i, p := range props {
			out[i] = spdx.Annotation{
				Annotator:         common.Annotator{AnnotatorType: spdxCreator.CreatorType, Annotator: spdxCreator.Creator},
				AnnotationDate:    created,
				AnnotationType:    "OTHER",
				AnnotationComment: p.name + ": " + p.value,
			}
		}
		return out
	}
	purl := func(p string) []*spdx.PackageExternalReference {
		return []*spdx.PackageExternalReference{{Category: "PACKAGE-MANAGER", RefType: "purl", Locator: p}}
	}

	image := &spdx.Package{
		PackageName:               in.ref.Context().Name(),
		PackageSPDXIdentifier:     "image",
		PackageVersion:            in.ref.DigestStr(),
		PackageDownloadLocation:   noAssertion,
		PackageChecksums:          []spdx.Checksum{{Algorithm: common.SHA256, Value: strings.TrimPrefix(in.ref.DigestStr(), "sha256:")}},
		PackageExternalReferences: purl(in.imagePURL()),
		PrimaryPackagePurpose:     "CONTAINER",
		Annotations:               annotate(in.imageProperties()),
	}
	a := in.agent
	agent := &spdx.Package{
		PackageName:               a.Attr,
		PackageSPDXIdentifier:     spdxID("agent-" + a.Attr),
		PackageVersion:            a.Version,
		PackageDownloadLocation:   noAssertion,
		PackageLicenseDeclared:    cmp.Or(a.License, noAssertion),
		PackageDescription:        a.Description,
		PackageExternalReferences: purl(in.agentPURL()),
		PrimaryPackagePurpose:     "APPLICATION",
	}
	if a.Name != "" {
		agent.Annotations = annotate([]property{{"agent-images:name", a.Name}})
	}
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      in.ref.String(),
		DocumentNamespace: "https://spdx.org/spdxdocs/agent-images/" + in.uuid,
		CreationInfo:      &spdx.CreationInfo{Creators: []common.Creator{spdxCreator}, Created: created},
		Packages:          []*spdx.Package{image, agent},
		OtherLicenses:     otherLicenses(a.License),
		Relationships: []*spdx.Relationship{
			{RefA: common.MakeDocElementID("", "DOCUMENT"), RefB: common.MakeDocElementID("", "image"), Relationship: "DESCRIBES"},
			{RefA: common.MakeDocElementID("", "image"), RefB: common.MakeDocElementID("", string(agent.PackageSPDXIdentifier)), Relationship: "CONTAINS"},
		},
	}
	for _, sp := range in.paths {
		pkg := &spdx.Package{
			PackageName:               sp.Name,
			PackageSPDXIdentifier:     spdxID("nix-" + sp.Hash),
			PackageVersion:            sp.Version,
			PackageDownloadLocation:   noAssertion,
			PackageExternalReferences: purl(storePathPURL(sp)),
			PrimaryPackagePurpose:     "LIBRARY",
			Annotations:               annotate([]property{{propStorePath, sp.Path}}),
		}
		if sp.NarHash != "" {
			pkg.PackageChecksums = []spdx.Checksum{{Algorithm: common.SHA256, Value: sp.NarHash}}
		}
		doc.Packages = append(doc.Packages, pkg)
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA: common.MakeDocElementID("", "image"), RefB: common.MakeDocElementID("", string(pkg.PackageSPDXIdentifier)), Relationship: "CONTAINS",
		})
	}
	return doc
}

// spdxID makes s an SPDX element ID: letters, digits, '.' and '-' only.
func spdxID(s string) common.ElementID {
	return common.ElementID(notInSPDXID.ReplaceAllString(s, "-"))
}

var notInSPDXID = regexp.MustCompile(`[^A-Za-z0-9.-]`)

// licenseRef finds the LicenseRef- identifiers of an SPDX expression.
var licenseRef = regexp.MustCompile(`\bLicenseRef-[A-Za-z0-9.-]+`)

// otherLicenses defines each LicenseRef- of expr, as SPDX requires of a
// document that uses one. Nix knows an unfree licence by name only, so the
// text says that and no more.
func otherLicenses(expr string) []*spdx.OtherLicense {
	var out []*spdx.OtherLicense
	refs := licenseRef.FindAllString(expr, -1)
	slices.Sort(refs)
	for _, id := range slices.Compact(refs) {
		text := "The flake names this licence " + id + "; its text is not recorded here."
		if id == "LicenseRef-unfree" {
			text = "The package is unfree (its nixpkgs meta.license is not free); the terms are its vendor's and are not recorded here."
		}
		out = append(out, &spdx.OtherLicense{LicenseIdentifier: id, ExtractedText: text})
	}
	return out
}
