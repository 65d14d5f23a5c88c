# The agents agent-images builds an image for, by image name. A string is
# the display name; an attrset also says which llm-agents package the image
# wraps (`package`, default the image name) and on which systems llm-agents
# is expected to build it (`systems`, default x86_64-linux and
# aarch64-linux). Versions, descriptions, licences and main programs come
# from the llm-agents packages themselves, so they follow its pin.
#
# An agent missing from llm-agents' packages on a system it is expected on
# has vanished (renamed, dropped, broken): `nix flake check` and `release
# matrix` name it and the nightly's tracking issue lists it, while the other
# agents still release. An agent llm-agents does not build for a system (its
# meta.platforms leaves the system out) is not expected there: leave that
# system out of `systems`, and nothing is reported.
#
# The systems below are those of the llm-agents revision flake.lock pins
# (8e1a8e0, 2026-05-05): every agent on both. Later revisions change five
# (testdata/standin/llm-agents/FACTS.md says where each was read); when the
# lock moves past them, `nix flake check` names them, and the notes below say
# what to write.
{
  # Coding agents.
  codingAgents = {
    amp = "Amp";
    claude-code = "Claude Code";
    # Later llm-agents builds it with its own Go builder, x86_64-linux only:
    # then `{ name = "CLI Proxy API"; systems = [ "x86_64-linux" ]; }`.
    cli-proxy-api = "CLI Proxy API";
    code = "Code";
    codex = "Codex CLI";
    copilot-cli = "Copilot CLI";
    # Later llm-agents builds it with its own Go builder, x86_64-linux only:
    # then `{ name = "Crush"; systems = [ "x86_64-linux" ]; }`.
    crush = "Crush";
    cursor-agent = "Cursor Agent";
    # Later llm-agents packages it for x86_64-linux only: then
    # `{ name = "Droid"; systems = [ "x86_64-linux" ]; }`.
    droid = "Droid";
    eca = "ECA";
    # llm-agents renamed the package to forgecode; the program is still
    # forge, and so is the image, so that pulls of .../forge keep working.
    forge = {
      name = "Forge";
      package = "forgecode";
    };
    gemini-cli = "Gemini CLI";
    goose-cli = "Goose";
    # Removed from llm-agents after the lock: remove it then.
    iflow-cli = "iFlow CLI";
    jules = "Jules";
    kilocode-cli = "Kilocode CLI";
    letta-code = "Letta Code";
    mistral-vibe = "Mistral Vibe";
    nanocoder = "Nanocoder";
    oh-my-opencode = "Oh My OpenCode";
    omp = "OMP";
    opencode = "OpenCode";
    pi = "Pi";
    # Later llm-agents packages it for x86_64-linux only: then
    # `{ name = "Qoder CLI"; systems = [ "x86_64-linux" ]; }`.
    qoder-cli = "Qoder CLI";
    qwen-code = "Qwen Code";
  };
  # Assistants.
  assistants = {
    hermes-agent = "Hermes Agent";
    localgpt = "LocalGPT";
    openclaw = "OpenClaw";
    picoclaw = "PicoClaw";
    zeroclaw = "ZeroClaw";
  };
}
