# chaos: fault injection for unmodified programs. `make demo` and `make test` are the two commands
# the README starts with; CI (.ci/run) runs `make test`.
CARGO ?= cargo
PREFIX ?= /usr/local
RELEASE := target/release

.PHONY: build demo test lint bench install clean

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

install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib
	install -m 0755 $(RELEASE)/chaos-ctl $(DESTDIR)$(PREFIX)/bin/chaos-ctl
	install -m 0755 $(RELEASE)/libchaos_shim.so $(DESTDIR)$(PREFIX)/lib/libchaos_shim.so

clean:
	$(CARGO) clean
