module github.com/nothingnesses/agent-images/testbed

go 1.26.0

require golang.org/x/crypto v0.46.0
