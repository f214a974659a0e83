"""One module per programme of RULES.md section 4; each is a pure function of the facts it reads."""
