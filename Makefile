# The two commands a newcomer needs: `make dev` and `make test`.
export SAM_CLI_TELEMETRY := 0

.PHONY: dev test bench package validate clean-local

## Run the API on http://localhost:9000 with demo data (DynamoDB Local on disk under .local/).
dev:
	scripts/dev.sh

## Run everything: fmt, clippy, template lint, unit, integration and end-to-end tests.
test:
	scripts/test.sh

## Measure cold start, size, warm overhead, DynamoDB work, cost, scale and load; writes
## docs/performance.md and docs/cost.md (about 20 minutes here, most of it release builds).
bench:
	scripts/bench.sh

## Release builds of every function for arm64 Lambda (what `sam build` packages).
package:
	scripts/tools.sh install
	eval "$$(scripts/tools.sh env)" && cargo lambda build --release --arm64 --output-format zip \
		-p token -p threads -p messages -p unread_count -p users -p admin -p purge -p realtime -p fanout

## Lint the SAM template only.
validate:
	eval "$$(scripts/tools.sh env)" && cfn-lint template.yaml && sam validate --lint --template-file template.yaml

## Stop local services and forget local data.
clean-local:
	scripts/dynamodb-local.sh stop || true
	rm -rf .local/dynamodb
