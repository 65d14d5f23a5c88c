# The 30 packages of numtide/llm-agents.nix that agent-images wraps, as at
# the revision the flake's lock pins (8e1a8e0, 2026-05-05). attr, version,
# mainProgram, the Linux systems of meta.platforms and whether the licence is
# unfree are the facts of /work/shared/data/llm-agents.json (read from
# packages/<attr>/package.nix on 2026-04-30, the nearest record to the lock);
# FACTS.md says where each fact was read and what changed after the lock.
# The descriptions are our own short summaries and the free licences our
# reading of each project. Every package of that revision is made by a
# nixpkgs builder (the comment after each says which kind of build).
[
  {
    attr = "amp";
    version = "0.0.1777525425-gadc8b1";
    mainProgram = "amp";
    description = "Sourcegraph's agentic coding tool for the terminal";
    license = "unfree";
    # build: prebuilt binary
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "claude-code";
    version = "2.1.123";
    mainProgram = "claude";
    description = "Anthropic's agentic coding assistant for the terminal";
    license = "unfree";
    # build: prebuilt binary
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "cli-proxy-api";
    # After the lock: built by llm-agents' own mkGo, whose meta.platforms
    # defaults to x86_64-linux only.
    version = "6.9.45";
    mainProgram = "cli-proxy-api";
    description = "Proxy that exposes coding-agent CLIs through an OpenAI-compatible API";
    license = "mit";
    # build: go
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "code";
    version = "0.6.96";
    mainProgram = "code";
    description = "Terminal coding agent forked from Codex, with extra tools";
    license = "asl20";
    # build: rust
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "codex";
    version = "0.125.0";
    mainProgram = "codex";
    description = "OpenAI's lightweight coding agent that runs in the terminal";
    license = "asl20";
    # build: rust
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "copilot-cli";
    version = "1.0.39";
    mainProgram = "copilot";
    description = "GitHub Copilot as an agent in the terminal";
    license = "unfree";
    # build: npm tarball + nodejs
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "crush";
    # After the lock: built by llm-agents' own mkGo, whose meta.platforms
    # defaults to x86_64-linux only.
    version = "0.64.0";
    mainProgram = "crush";
    description = "Charm's glamorous AI coding agent for the terminal";
    license = "mit";
    # build: go
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "cursor-agent";
    version = "2026.04.29-c83a488";
    mainProgram = "cursor-agent";
    description = "Cursor's coding agent for the command line";
    license = "unfree";
    # build: prebuilt binary
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "droid";
    # After the lock: meta.platforms = [ "x86_64-linux" ] (its download table
    # has no arm64 Linux build).
    version = "0.113.0";
    mainProgram = "droid";
    description = "Factory's software engineering agent for the terminal";
    license = "unfree";
    # build: prebuilt binary
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "eca";
    version = "0.131.0";
    mainProgram = "eca";
    description = "Editor Code Assistant: an editor-agnostic AI pair-programming server";
    license = "asl20";
    # build: prebuilt native binary
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    # Renamed upstream: the package is forgecode, its program still forge.
    attr = "forgecode";
    version = "2.12.10";
    mainProgram = "forge";
    description = "AI pair programmer for the shell, working with many model providers";
    license = "asl20";
    # build: prebuilt binary
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "gemini-cli";
    version = "0.40.0";
    mainProgram = "gemini";
    description = "Google's open-source AI agent that brings Gemini to the terminal";
    license = "asl20";
    # build: npm
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "goose-cli";
    version = "1.24.0";
    mainProgram = "goose";
    description = "Block's extensible open-source AI agent for engineering tasks";
    license = "asl20";
    # build: rust
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "iflow-cli";
    # Removed from llm-agents after the lock (absent from its packages/ late in 2026).
    version = "0.5.19";
    mainProgram = "iflow";
    description = "iFlow's AI agent for the terminal";
    license = "mit";
    # build: npm
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "jules";
    version = "0.1.42";
    mainProgram = "jules";
    description = "Google's asynchronous coding agent, driven from the command line";
    license = "unfree";
    # build: prebuilt binary
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "kilocode-cli";
    version = "7.2.31";
    mainProgram = "kilocode";
    description = "Kilo Code's open-source coding agent for the terminal";
    license = "asl20";
    # build: prebuilt binary
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "letta-code";
    version = "0.24.12";
    mainProgram = "letta";
    description = "Memory-first coding agent built on Letta";
    license = "asl20";
    # build: npm
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "mistral-vibe";
    version = "2.9.2";
    mainProgram = "vibe";
    description = "Mistral AI's command-line coding assistant";
    license = "asl20";
    # build: python
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "nanocoder";
    version = "1.25.2";
    mainProgram = "nanocoder";
    description = "Local-first coding agent for the terminal";
    license = "mit";
    # build: npm
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "oh-my-opencode";
    version = "3.17.6";
    mainProgram = "oh-my-opencode";
    description = "Agent harness and plugin collection for OpenCode";
    license = "unfree";
    # build: bun
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "omp";
    version = "14.5.10";
    mainProgram = "omp";
    description = "Oh My Pi: a coding agent harness built on Pi";
    license = "mit";
    # build: bun + rust
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "opencode";
    version = "1.14.30";
    mainProgram = "opencode";
    description = "Open-source AI coding agent built for the terminal";
    license = "mit";
    # build: prebuilt binary
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "pi";
    version = "0.70.6";
    mainProgram = "pi";
    description = "Minimal, extensible terminal coding agent";
    license = "mit";
    # build: npm
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "qoder-cli";
    # After the lock: meta.platforms = [ "x86_64-linux" ].
    version = "0.2.5";
    mainProgram = "qodercli";
    description = "Qoder's agentic coding tool for the terminal";
    license = "unfree";
    # build: prebuilt binary
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "qwen-code";
    version = "0.15.5";
    mainProgram = "qwen";
    description = "Command-line AI workflow tool tuned for Qwen coder models";
    license = "asl20";
    # build: npm
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "hermes-agent";
    version = "2026.4.23";
    mainProgram = "hermes";
    description = "Nous Research's self-improving personal AI agent";
    license = "mit";
    # build: python + npm
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "localgpt";
    version = "0.3.6";
    mainProgram = "localgpt";
    description = "Local-device AI assistant with persistent memory";
    license = "asl20";
    # build: rust
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "openclaw";
    version = "2026.4.26";
    mainProgram = "openclaw";
    description = "Personal AI assistant that runs on your own devices";
    license = "mit";
    # build: pnpm
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "picoclaw";
    version = "0.2.7";
    mainProgram = "picoclaw";
    description = "Ultra-lightweight personal AI assistant written in Go";
    license = "mit";
    # build: go
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
  {
    attr = "zeroclaw";
    version = "0.7.3";
    mainProgram = "zeroclaw";
    description = "Fast, small, fully autonomous AI assistant infrastructure";
    license = "asl20";
    # build: rust
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }
]
