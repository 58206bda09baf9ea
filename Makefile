# chaos: fault injection for unmodified programs. `make demo` and `make test` are the two commands
# the README starts with; CI (.ci/run) runs `make test`.
CARGO ?= cargo
PREFIX ?= /usr/local
RELEASE := target/release

.PHONY: build demo test lint bench install uninstall clean

build:
	$(CARGO) build --release

demo: build
	$(RELEASE)/chaos-ctl run -- python3 examples/roundtrip.py

# Release everywhere: the integration tests run the release shim and ctl (one build, reused).
test:
	$(CARGO) build --release
	$(CARGO) test --release --workspace

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --all-targets -- -D warnings

bench: build
	bash bench/run.sh

# What `make install` puts under $(DESTDIR)$(PREFIX), and `make uninstall` removes again. The man
# page and completions come from the built chaos-ctl itself (`chaos-ctl generate`, hidden).
MANDIR ?= $(PREFIX)/share/man
BASHDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHDIR ?= $(PREFIX)/share/zsh/site-functions
FISHDIR ?= $(PREFIX)/share/fish/vendor_completions.d
INSTALLED := $(PREFIX)/bin/chaos-ctl $(PREFIX)/lib/libchaos_shim.so $(MANDIR)/man1/chaos-ctl.1 \
	$(BASHDIR)/chaos-ctl $(ZSHDIR)/_chaos-ctl $(FISHDIR)/chaos-ctl.fish

install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(BASHDIR) $(DESTDIR)$(ZSHDIR) $(DESTDIR)$(FISHDIR)
	install -m 0755 $(RELEASE)/chaos-ctl $(DESTDIR)$(PREFIX)/bin/chaos-ctl
	install -m 0755 $(RELEASE)/libchaos_shim.so $(DESTDIR)$(PREFIX)/lib/libchaos_shim.so
	$(RELEASE)/chaos-ctl generate man > $(DESTDIR)$(MANDIR)/man1/chaos-ctl.1
	$(RELEASE)/chaos-ctl generate bash > $(DESTDIR)$(BASHDIR)/chaos-ctl
	$(RELEASE)/chaos-ctl generate zsh > $(DESTDIR)$(ZSHDIR)/_chaos-ctl
	$(RELEASE)/chaos-ctl generate fish > $(DESTDIR)$(FISHDIR)/chaos-ctl.fish
	chmod 0644 $(DESTDIR)$(MANDIR)/man1/chaos-ctl.1 $(DESTDIR)$(BASHDIR)/chaos-ctl \
		$(DESTDIR)$(ZSHDIR)/_chaos-ctl $(DESTDIR)$(FISHDIR)/chaos-ctl.fish

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))

clean:
	$(CARGO) clean
