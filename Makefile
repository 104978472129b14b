# Entry points. `make run` and `make test` are the two README commands.
PRESET ?= dev
BUILD_DIR := build/$(PRESET)
RUN_DIR ?= $(CURDIR)/build/run

.PHONY: deps configure build run test unit integration clean demo format

deps:
	bash scripts/install-deps.sh

configure: deps
	cmake --preset $(PRESET)

build: configure
	cmake --build --preset $(PRESET)

# Builds and starts the server on 0.0.0.0:18317 with its data in build/run/data.
run:
	$(MAKE) build PRESET=release
	mkdir -p $(RUN_DIR)
	cp build/release/cpa-manager-plus $(RUN_DIR)/cpa-manager-plus
	cd $(RUN_DIR) && exec ./cpa-manager-plus

test: build
	ctest --preset $(PRESET) -j2

unit: build
	ctest --preset $(PRESET) -L unit -j2

integration: build
	ctest --preset $(PRESET) -L integration

# The simulator producing traffic plus a Manager Server bound to it (admin key: demo-admin-key).
demo:
	$(MAKE) build PRESET=release
	bash scripts/demo.sh

clean:
	rm -rf build
