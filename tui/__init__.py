"""streamhealth terminal UI (Textual). Talks to an agent over HTTP, or starts one embedded."""
