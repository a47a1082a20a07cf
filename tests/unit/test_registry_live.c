/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registry client tests against real servers on 127.0.0.1, started by
 * tests/integration/registry_client.sh:
 *
 *   test_registry_live direct HOST:PORT STORAGE_DIR
 *       docker-registry without auth; STORAGE_DIR is its filesystem root,
 *       where the digest tests flip bytes of stored blobs.
 *   test_registry_live auth HOST:PORT USER PASSWORD EXPIRY_SECONDS
 *       authproxy.py with tokens, basic credentials on /token and blob
 *       redirects to another origin.
 *   test_registry_live faults HOST:PORT FAILURES
 *       authproxy.py without auth that responds to the first FAILURES
 *       requests with 503 and ignores Range headers.
 *   test_registry_live tls HOST:PORT CA_FILE
 *       authproxy.py without auth serving HTTPS with a certificate for
 *       127.0.0.1 that CA_FILE (a self-signed certificate) vouches for.
 *   test_registry_live proxy HOST:PORT
 *       authproxy.py without auth, whose faults each test sets through its
 *       /_faults endpoint: delayed blob GETs (to count the requests in
 *       flight) and bodies cut short.
 *   test_registry_live stall HOST:PORT
 *       a server that accepts connections and never responds.
 *   test_registry_live refused HOST:PORT
 *       a port where nothing listens.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "common/digest.h"
#include "common/log.h"
#include "common/stats.h"
#include "common/util.h"
#include "registry/manifest.h"
#include "registry/registry.h"
#include "tests/unit/check.h"

#define BIG_BLOB_SIZE (3u * 1024 * 1024 + 17)
#define SMALL_BLOB_SIZE (100u * 1024)
#define THREADS 8
#define READS_PER_THREAD 40

static const char *host;
static const char *storage_dir;
static const char *ca_file;
static const char *user;
static const char *password;
static unsigned expiry_seconds;
static unsigned failures;

struct blob {
	uint8_t *data;
	size_t len;
	struct im_digest digest;
};

static struct blob big, small, config;

/* Deterministic bytes, so a failure reproduces. */
static void make_blob(struct blob *b, size_t len, uint32_t seed)
{
	b->data = malloc(len ? len : 1);
	b->len = len;
	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		b->data[i] = (uint8_t)(seed >> 16);
	}
	im_sha256(b->data, len, &b->digest);
}

static struct im_registry *open_registry(const char *name, const char *pass, unsigned timeout)
{
	struct im_registry_options opts = {
		.plain_http = true,
		.tls_verify = true,
		.username = name,
		.password = pass,
		.timeout_seconds = timeout,
	};
	struct im_registry *r = NULL;

	CHECK_INT(im_registry_new(host, &opts, &r), 0);
	return r;
}

static uint64_t stat_value(atomic_uint_fast64_t *field)
{
	return atomic_load(field);
}

/* Write b to a temporary file and return its descriptor. */
static int blob_file(const struct blob *b)
{
	char path[] = "/tmp/imgmount-live-XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0)
		return -1;
	unlink(path);
	if (im_write_full(fd, b->data, b->len) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void check_range(struct im_registry *r, const char *repo, const struct blob *b,
			uint64_t offset, uint64_t len)
{
	uint8_t *buf = malloc(len ? len : 1);
	int rc = im_registry_get_blob_range(r, repo, &b->digest, offset, len, buf);

	fprintf(stderr, "  range %llu+%llu\n", (unsigned long long)offset, (unsigned long long)len);
	CHECK_INT(rc, 0);
	if (rc == 0)
		CHECK(memcmp(buf, b->data + offset, len) == 0);
	free(buf);
}

static void check_standard_ranges(struct im_registry *r, const char *repo, const struct blob *b)
{
	check_range(r, repo, b, 0, 100);
	check_range(r, repo, b, b->len / 2 - 4096, 65536);
	check_range(r, repo, b, b->len - 50, 50);
	check_range(r, repo, b, b->len - 1, 1);
	check_range(r, repo, b, 0, b->len);
}

struct collect {
	uint8_t *data;
	size_t len;
	size_t max;
};

static int collect_sink(void *opaque, const void *data, size_t len)
{
	struct collect *c = opaque;

	if (len > c->max - c->len)
		return -EFBIG;
	memcpy(c->data + c->len, data, len);
	c->len += len;
	return 0;
}

static int stop_sink(void *opaque, const void *data, size_t len)
{
	(void)opaque;
	(void)data;
	(void)len;
	return -ECANCELED;
}

static void push_test_blobs(struct im_registry *r, const char *repo)
{
	int fd = blob_file(&big);

	CHECK(fd >= 0);
	CHECK_INT(im_registry_push_blob_fd(r, repo, fd, big.len, &big.digest), 0);
	close(fd);
	CHECK_INT(im_registry_push_blob_buffer(r, repo, small.data, small.len, &small.digest), 0);
	CHECK_INT(im_registry_push_blob_buffer(r, repo, config.data, config.len, &config.digest), 0);
}

/* Build, push under tag and return the manifest of the test image. */
static char *push_test_manifest(struct im_registry *r, const char *repo, const char *tag,
				size_t *ret_len)
{
	struct im_descriptor layers[2] = {
		{ .media_type = IM_MEDIA_OCI_LAYER_ZSTD, .digest = big.digest, .size = big.len },
		{ .media_type = IM_MEDIA_OCI_LAYER_GZIP, .digest = small.digest, .size = small.len },
	};
	struct im_manifest m = {
		.media_type = IM_MEDIA_OCI_MANIFEST,
		.config = { .media_type = IM_MEDIA_OCI_CONFIG, .digest = config.digest,
			    .size = config.len },
		.layers = layers,
		.n_layers = 2,
	};
	char *json = NULL;

	CHECK_INT(im_manifest_to_json(&m, &json, ret_len), 0);
	CHECK_INT(im_registry_put_manifest(r, repo, tag, IM_MEDIA_OCI_MANIFEST, json, *ret_len), 0);
	return json;
}

static void test_push_and_head(void)
{
	struct im_registry *r = open_registry(NULL, NULL, 10);
	uint64_t size = 0;
	uint64_t requests;

	push_test_blobs(r, "live/app");
	CHECK_INT(im_registry_blob_exists(r, "live/app", &big.digest, &size), 1);
	CHECK_INT(size, big.len);
	CHECK_INT(im_registry_blob_exists(r, "live/app", &small.digest, &size), 1);
	CHECK_INT(size, small.len);

	/* A second push finds the blob with one HEAD and uploads nothing. */
	requests = stat_value(&im_stats.registry_requests);
	CHECK_INT(im_registry_push_blob_buffer(r, "live/app", small.data, small.len,
					       &small.digest), 0);
	CHECK_INT(stat_value(&im_stats.registry_requests) - requests, 1);

	/* An empty blob. */
	{
		struct blob empty;

		make_blob(&empty, 0, 1);
		CHECK_INT(im_registry_push_blob_buffer(r, "live/app", empty.data, 0, &empty.digest), 0);
		CHECK_INT(im_registry_blob_exists(r, "live/app", &empty.digest, &size), 1);
		CHECK_INT(size, 0);
		free(empty.data);
	}
	im_registry_free(r);
}

static void test_missing_blob(void)
{
	struct im_registry *r = open_registry(NULL, NULL, 10);
	struct blob absent;
	uint8_t buf[16];
	struct collect c = { .data = buf, .max = sizeof(buf) };

	make_blob(&absent, 64, 99);
	CHECK_INT(im_registry_blob_exists(r, "live/app", &absent.digest, NULL), 0);
	CHECK_INT(im_registry_get_blob_range(r, "live/app", &absent.digest, 0, 16, buf), -ENOENT);
	CHECK_INT(im_registry_get_blob(r, "live/app", &absent.digest, collect_sink, &c), -ENOENT);
	CHECK_INT(im_registry_blob_exists(r, "live/nosuchrepo", &big.digest, NULL), 0);
	free(absent.data);
	im_registry_free(r);
}

static void test_range_reads(void)
{
	struct im_registry *r = open_registry(NULL, NULL, 10);
	uint8_t buf[64];
	uint64_t bytes = stat_value(&im_stats.registry_bytes);

	check_standard_ranges(r, "live/app", &big);
	check_range(r, "live/app", &small, 1000, 1);
	CHECK(stat_value(&im_stats.registry_bytes) - bytes >= big.len);

	/* Past the end: never partial data. */
	CHECK(im_registry_get_blob_range(r, "live/app", &big.digest, big.len - 10, 20, buf) < 0);
	CHECK(im_registry_get_blob_range(r, "live/app", &big.digest, big.len + 5, 10, buf) < 0);
	CHECK_INT(im_registry_get_blob_range(r, "live/app", &big.digest, UINT64_MAX - 5, 10, buf),
		  -EINVAL);
	CHECK_INT(im_registry_get_blob_range(r, "live/app", &big.digest, 0, 0, buf), 0);
	im_registry_free(r);
}

static void test_whole_blob(void)
{
	struct im_registry *r = open_registry(NULL, NULL, 10);
	struct collect c = { .data = malloc(big.len), .max = big.len };
	uint8_t *body = NULL;
	size_t len = 0;

	CHECK_INT(im_registry_get_blob(r, "live/app", &big.digest, collect_sink, &c), 0);
	CHECK_INT(c.len, big.len);
	CHECK(memcmp(c.data, big.data, big.len) == 0);
	free(c.data);

	CHECK_INT(im_registry_get_blob(r, "live/app", &big.digest, stop_sink, NULL), -ECANCELED);

	CHECK_INT(im_registry_get_blob_buffer(r, "live/app", &small.digest, small.len, &body, &len), 0);
	CHECK_INT(len, small.len);
	if (body)
		CHECK(memcmp(body, small.data, small.len) == 0);
	free(body);

	body = NULL;
	CHECK_INT(im_registry_get_blob_buffer(r, "live/app", &small.digest, small.len - 1,
					      &body, &len), -EFBIG);
	CHECK(body == NULL);
	im_registry_free(r);
}

static void test_manifest_round_trip(void)
{
	struct im_registry *r = open_registry(NULL, NULL, 10);
	char digest_text[IM_DIGEST_STRING_LEN];
	struct im_digest expected, got;
	struct im_manifest m;
	uint8_t *body = NULL;
	char *media_type = NULL;
	size_t json_len = 0, len = 0;
	char *json = push_test_manifest(r, "live/app", "v1", &json_len);

	im_sha256(json, json_len, &expected);
	im_digest_format(&expected, digest_text);

	CHECK_INT(im_registry_get_manifest(r, "live/app", "v1", &body, &len, &media_type, &got), 0);
	CHECK_INT(len, json_len);
	if (body && len == json_len)
		CHECK(memcmp(body, json, len) == 0);
	CHECK_STR(media_type, IM_MEDIA_OCI_MANIFEST);
	CHECK(im_digest_equal(&got, &expected));
	CHECK_INT(im_manifest_parse(body, len, media_type, &m), 0);
	CHECK_INT(m.n_layers, 2);
	im_manifest_clear(&m);
	free(body);
	free(media_type);

	body = NULL;
	media_type = NULL;
	CHECK_INT(im_registry_get_manifest(r, "live/app", digest_text, &body, &len, &media_type,
					   &got), 0);
	CHECK(im_digest_equal(&got, &expected));
	free(body);
	free(media_type);

	CHECK_INT(im_registry_get_manifest(r, "live/app", "nosuchtag", &body, &len, &media_type,
					   &got), -ENOENT);
	CHECK_INT(im_registry_get_manifest(r, "live/app", "bad/tag", &body, &len, &media_type,
					   &got), -EINVAL);
	CHECK_INT(im_registry_get_manifest(r, "Live/App", "v1", &body, &len, &media_type, &got),
		  -EINVAL);
	free(json);
	im_registry_free(r);
}

/*
 * Change one byte of a blob in docker-registry's filesystem storage: the
 * first byte, or when needle is given the case of its first letter, which
 * keeps a manifest valid JSON. The registry responds with 500 to a manifest
 * it cannot parse, which would test nothing.
 */
static int corrupt_stored_blob(const struct im_digest *digest, const char *needle)
{
	char hex[2 * IM_SHA256_LEN + 1];
	char path[4096];
	uint8_t data[65536];
	ssize_t n;
	size_t at = 0;
	int fd, rc = -1;

	im_digest_format_hex(digest, hex);
	snprintf(path, sizeof(path), "%s/docker/registry/v2/blobs/sha256/%.2s/%s/data",
		 storage_dir, hex, hex);
	fd = open(path, O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}

	n = pread(fd, data, sizeof(data), 0);
	if (n > 0 && needle) {
		uint8_t *found = memmem(data, (size_t)n, needle, strlen(needle));

		at = found ? (size_t)(found - data) : (size_t)n;
	}
	if (n > 0 && at < (size_t)n) {
		data[at] ^= 0x20;
		rc = pwrite(fd, &data[at], 1, (off_t)at) == 1 ? 0 : -1;
	}
	close(fd);
	return rc;
}

static void test_digest_mismatch(void)
{
	struct im_registry *r = open_registry(NULL, NULL, 10);
	char digest_text[IM_DIGEST_STRING_LEN];
	struct im_digest expected, got;
	struct blob layer, cfg;
	uint8_t *body = NULL;
	char *media_type = NULL;
	size_t json_len = 0, len = 0;
	char *json;
	struct collect c;

	/* A separate repository and distinct blobs, so other tests keep theirs. */
	make_blob(&layer, 5000, 7);
	make_blob(&cfg, 300, 8);
	CHECK_INT(im_registry_push_blob_buffer(r, "live/bad", layer.data, layer.len,
					       &layer.digest), 0);
	CHECK_INT(im_registry_push_blob_buffer(r, "live/bad", cfg.data, cfg.len, &cfg.digest), 0);
	{
		struct im_descriptor d = { .media_type = IM_MEDIA_OCI_LAYER, .digest = layer.digest,
					   .size = layer.len };
		struct im_manifest m = {
			.config = { .media_type = IM_MEDIA_OCI_CONFIG, .digest = cfg.digest,
				    .size = cfg.len },
			.layers = &d,
			.n_layers = 1,
		};

		CHECK_INT(im_manifest_to_json(&m, &json, &json_len), 0);
	}
	CHECK_INT(im_registry_put_manifest(r, "live/bad", "v1", IM_MEDIA_OCI_MANIFEST, json,
					   json_len), 0);
	im_sha256(json, json_len, &expected);
	im_digest_format(&expected, digest_text);

	CHECK_INT(corrupt_stored_blob(&expected, "layer.v1.tar"), 0);
	CHECK_INT(corrupt_stored_blob(&layer.digest, NULL), 0);

	CHECK_INT(im_registry_get_manifest(r, "live/bad", digest_text, &body, &len, &media_type,
					   &got), -EBADMSG);
	/* By tag there is no digest to compare, but the one returned shows it. */
	CHECK_INT(im_registry_get_manifest(r, "live/bad", "v1", &body, &len, &media_type, &got), 0);
	CHECK(!im_digest_equal(&got, &expected));
	free(body);
	free(media_type);

	c.data = malloc(layer.len);
	c.len = 0;
	c.max = layer.len;
	CHECK_INT(im_registry_get_blob(r, "live/bad", &layer.digest, collect_sink, &c), -EBADMSG);
	free(c.data);
	body = NULL;
	CHECK_INT(im_registry_get_blob_buffer(r, "live/bad", &layer.digest, layer.len, &body, &len),
		  -EBADMSG);
	CHECK(body == NULL);

	free(json);
	free(layer.data);
	free(cfg.data);
	im_registry_free(r);
}

struct reader {
	struct im_registry *r;
	const char *repo;
	unsigned seed;
	int reads;
	int failures;
};

static void *read_ranges(void *opaque)
{
	struct reader *rd = opaque;
	uint8_t *buf = malloc(65536);

	for (int i = 0; i < rd->reads; i++) {
		uint64_t len = 1 + rand_r(&rd->seed) % 65536;
		uint64_t offset = (uint64_t)rand_r(&rd->seed) % (big.len - len);

		if (im_registry_get_blob_range(rd->r, rd->repo, &big.digest, offset, len, buf) < 0 ||
		    memcmp(buf, big.data + offset, len) != 0)
			rd->failures++;
	}
	free(buf);
	return NULL;
}

static int concurrent_reads(struct im_registry *r, const char *repo, int reads)
{
	pthread_t threads[THREADS];
	struct reader readers[THREADS];
	int failed = 0;

	for (int i = 0; i < THREADS; i++) {
		readers[i] = (struct reader){
			.r = r, .repo = repo, .seed = (unsigned)i + 1, .reads = reads,
		};
		pthread_create(&threads[i], NULL, read_ranges, &readers[i]);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(threads[i], NULL);
		failed += readers[i].failures;
	}
	return failed;
}

static void test_concurrent_ranges(void)
{
	struct im_registry *r = open_registry(NULL, NULL, 10);

	CHECK_INT(concurrent_reads(r, "live/app", READS_PER_THREAD), 0);
	im_registry_free(r);
}

static int run_direct(void)
{
	RUN_TEST(test_push_and_head);
	RUN_TEST(test_missing_blob);
	RUN_TEST(test_range_reads);
	RUN_TEST(test_whole_blob);
	RUN_TEST(test_manifest_round_trip);
	RUN_TEST(test_digest_mismatch);
	RUN_TEST(test_concurrent_ranges);
	return check_exit_status();
}

static uint64_t tokens(void)
{
	return stat_value(&im_stats.token_requests);
}

static size_t discard(char *data, size_t size, size_t nmemb, void *opaque)
{
	(void)data;
	(void)opaque;
	return size * nmemb;
}

static void revoke_tokens(void)
{
	char url[256];
	CURL *easy = curl_easy_init();
	long status = 0;

	snprintf(url, sizeof(url), "http://%s/_revoke", host);
	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, "");
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
	CHECK_INT(curl_easy_perform(easy), CURLE_OK);
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	CHECK_INT(status, 200);
	curl_easy_cleanup(easy);
}

static void test_token_fetch_and_reuse(void)
{
	struct im_registry *r = open_registry(user, password, 10);
	uint64_t before = tokens();
	uint8_t *body = NULL;
	char *media_type = NULL;
	struct im_digest got;
	size_t len = 0;
	char *json;

	/* Pull scope for the HEADs, pull,push for the uploads: two tokens. */
	push_test_blobs(r, "auth/app");
	json = push_test_manifest(r, "auth/app", "v1", &len);
	CHECK_INT(tokens() - before, 2);

	/* Reads reuse the pull token; blob reads are redirected to storage. */
	for (int i = 0; i < 5; i++)
		check_standard_ranges(r, "auth/app", &big);
	CHECK_INT(im_registry_get_manifest(r, "auth/app", "v1", &body, &len, &media_type, &got), 0);
	CHECK_INT(tokens() - before, 2);

	free(body);
	free(media_type);
	free(json);
	im_registry_free(r);
}

/* Fetch the "v1" manifest of auth/app: a request that always goes to the
 * registry, while blob reads may reuse a redirect target that needs no token. */
static void check_manifest_v1(struct im_registry *r)
{
	uint8_t *body = NULL;
	char *media_type = NULL;
	struct im_digest got;
	size_t len = 0;

	CHECK_INT(im_registry_get_manifest(r, "auth/app", "v1", &body, &len, &media_type, &got), 0);
	free(body);
	free(media_type);
}

static void test_token_renewal(void)
{
	struct im_registry *r = open_registry(user, password, 10);
	uint64_t before;

	check_range(r, "auth/app", &big, 0, 10);
	before = tokens();

	/* Expiry: the client renews before sending. */
	sleep(expiry_seconds + 1);
	check_manifest_v1(r);
	CHECK_INT(tokens() - before, 1);

	/* Revocation: the 401 makes the client fetch a new token and retry. */
	revoke_tokens();
	check_manifest_v1(r);
	CHECK_INT(tokens() - before, 2);

	/* Blob reads still work with the renewed token and redirect target. */
	check_range(r, "auth/app", &big, 20, 10);
	im_registry_free(r);
}

static void test_token_single_flight(void)
{
	struct im_registry *r = open_registry(user, password, 10);
	uint64_t before = tokens();

	/* Few reads, so that all of them fit in one token lifetime. */
	CHECK_INT(concurrent_reads(r, "auth/app", 2), 0);
	CHECK_INT(tokens() - before, 1);
	im_registry_free(r);
}

static void test_wrong_password(void)
{
	struct im_registry *r = open_registry(user, "wrong", 10);
	uint8_t buf[16];

	CHECK_INT(im_registry_get_blob_range(r, "auth/app", &big.digest, 0, 16, buf), -EACCES);
	im_registry_free(r);

	r = open_registry(NULL, NULL, 10);
	CHECK_INT(im_registry_get_blob_range(r, "auth/app", &big.digest, 0, 16, buf), -EACCES);
	im_registry_free(r);
}

static int run_auth(void)
{
	RUN_TEST(test_token_fetch_and_reuse);
	RUN_TEST(test_token_renewal);
	RUN_TEST(test_token_single_flight);
	RUN_TEST(test_wrong_password);
	return check_exit_status();
}

static void test_retry_then_success(void)
{
	struct im_registry *r = open_registry(NULL, NULL, 10);
	uint64_t retries = stat_value(&im_stats.registry_retries);

	push_test_blobs(r, "faults/app");
	CHECK_INT(stat_value(&im_stats.registry_retries) - retries, failures);
	im_registry_free(r);
}

static void test_ranges_answered_whole(void)
{
	struct im_registry *r = open_registry(NULL, NULL, 10);

	check_standard_ranges(r, "faults/app", &big);
	CHECK_INT(concurrent_reads(r, "faults/app", READS_PER_THREAD), 0);
	im_registry_free(r);
}

static int run_faults(void)
{
	RUN_TEST(test_retry_then_success);
	RUN_TEST(test_ranges_answered_whole);
	return check_exit_status();
}

static struct im_registry *open_tls_registry(bool plain_http, bool verify, const char *ca)
{
	struct im_registry_options opts = {
		.plain_http = plain_http,
		.tls_verify = verify,
		.ca_file = ca,
		.timeout_seconds = 10,
	};
	struct im_registry *r = NULL;

	CHECK_INT(im_registry_new(host, &opts, &r), 0);
	return r;
}

static void test_tls_with_ca_file(void)
{
	struct im_registry *r = open_tls_registry(false, true, ca_file);
	uint64_t size = 0;

	push_test_blobs(r, "tls/app");
	CHECK_INT(im_registry_blob_exists(r, "tls/app", &big.digest, &size), 1);
	CHECK_INT(size, big.len);
	check_standard_ranges(r, "tls/app", &big);
	im_registry_free(r);
}

static void test_tls_untrusted_rejected(void)
{
	struct im_registry *r = open_tls_registry(false, true, NULL);
	uint64_t retries = stat_value(&im_stats.registry_retries);
	uint8_t buf[16];

	/* The system CAs do not vouch for the test certificate. */
	CHECK_INT(im_registry_get_blob_range(r, "tls/app", &big.digest, 0, 16, buf), -EIO);
	CHECK_INT(stat_value(&im_stats.registry_retries) - retries, 0);
	im_registry_free(r);
}

static void test_tls_verify_off(void)
{
	struct im_registry *r = open_tls_registry(false, false, NULL);

	check_range(r, "tls/app", &big, 1000, 1000);
	im_registry_free(r);
}

static void test_plain_http_to_tls_port(void)
{
	struct im_registry *r = open_tls_registry(true, true, NULL);
	uint8_t buf[16];

	CHECK(im_registry_get_blob_range(r, "tls/app", &big.digest, 0, 16, buf) < 0);
	im_registry_free(r);
}

static int run_tls(void)
{
	RUN_TEST(test_tls_with_ca_file);
	RUN_TEST(test_tls_untrusted_rejected);
	RUN_TEST(test_tls_verify_off);
	RUN_TEST(test_plain_http_to_tls_port);
	return check_exit_status();
}

/* Collects a small response body for proxy_call(). */
struct body_buffer {
	char data[4096];
	size_t len;
};

static size_t collect_body(char *data, size_t size, size_t nmemb, void *opaque)
{
	struct body_buffer *b = opaque;
	size_t n = size * nmemb;

	if (n > sizeof(b->data) - 1 - b->len)
		return 0;
	memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

/*
 * Send a request to the proxy's control path ("/_stats" with no body, or
 * "/_faults" with a JSON body) and return the value of counter in the JSON
 * response, or -1 if there is none.
 */
static long long proxy_call(const char *path, const char *post_body, const char *counter)
{
	struct body_buffer b = {};
	char url[256];
	CURL *easy = curl_easy_init();
	struct json_object *root, *value;
	long long result = -1;

	snprintf(url, sizeof(url), "http://%s%s", host, path);
	curl_easy_setopt(easy, CURLOPT_URL, url);
	if (post_body)
		curl_easy_setopt(easy, CURLOPT_POSTFIELDS, post_body);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, collect_body);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, &b);
	CHECK_INT(curl_easy_perform(easy), CURLE_OK);
	curl_easy_cleanup(easy);

	root = json_tokener_parse(b.data);
	if (root && counter && json_object_object_get_ex(root, counter, &value))
		result = json_object_get_int64(value);
	json_object_put(root);
	return result;
}

struct slot_reader {
	struct im_registry *r;
	int index;
	int failures;
};

static void *read_one_range(void *opaque)
{
	struct slot_reader *sr = opaque;
	uint64_t offset = (uint64_t)sr->index * 4096;
	uint8_t buf[4096];

	if (im_registry_get_blob_range(sr->r, "inflight/app", &big.digest, offset,
				       sizeof(buf), buf) < 0 ||
	    memcmp(buf, big.data + offset, sizeof(buf)) != 0)
		sr->failures++;
	return NULL;
}

/*
 * Read one range from each of `readers` threads at once through a registry
 * opened with max_requests_per_host = limit (0: the default), and return
 * the largest number of blob GETs the proxy held in its delay at once.
 */
static long long max_in_flight_for(unsigned limit, int readers)
{
	struct im_registry_options opts = {
		.plain_http = true,
		.tls_verify = true,
		.timeout_seconds = 30,
		.max_requests_per_host = limit,
	};
	pthread_t threads[64];
	struct slot_reader sr[64];
	struct im_registry *r = NULL;
	int failed = 0;

	CHECK(readers <= 64);
	CHECK_INT(im_registry_new(host, &opts, &r), 0);
	if (!r)
		return -1;

	proxy_call("/_faults", "{\"delay\": 0.3}", NULL);
	for (int i = 0; i < readers; i++) {
		sr[i] = (struct slot_reader){ .r = r, .index = i };
		pthread_create(&threads[i], NULL, read_one_range, &sr[i]);
	}
	for (int i = 0; i < readers; i++) {
		pthread_join(threads[i], NULL);
		failed += sr[i].failures;
	}
	proxy_call("/_faults", "{\"delay\": 0}", NULL);

	CHECK_INT(failed, 0);
	im_registry_free(r);
	return proxy_call("/_stats", NULL, "delayed_at_once_max");
}

static void test_requests_in_flight_bounded(void)
{
	struct im_registry *r = open_registry(NULL, NULL, 10);
	long long delayed;

	push_test_blobs(r, "inflight/app");
	im_registry_free(r);

	/* 24 readers with a limit of 4: the proxy never has more than 4 at once. */
	CHECK_INT(max_in_flight_for(4, 24), 4);
	delayed = proxy_call("/_stats", NULL, "delayed");
	CHECK_INT(delayed, 24);
}

/* Runs after test_requests_in_flight_bounded: the proxy's maximum only grows. */
static void test_requests_in_flight_default(void)
{
	/* 40 readers with the default limit of 16. */
	CHECK_INT(max_in_flight_for(0, 40), 16);
}

/*
 * Read 2 MiB from offset 100000 while the proxy ends the first response
 * after 600 KiB, with a reset or a FIN (the body is then shorter than its
 * Content-Length). The read is retried once and returns exactly the blob's
 * bytes: nothing of the cut response is returned as data.
 */
static void check_cut_large_range(const char *mode)
{
	struct im_registry *r = open_registry(NULL, NULL, 30);
	uint64_t retries = stat_value(&im_stats.registry_retries);
	long long cuts = proxy_call("/_stats", NULL, "cuts");
	const uint64_t offset = 100000, len = 2u << 20;
	char faults[128];
	uint8_t *buf = malloc(len);
	int rc;

	snprintf(faults, sizeof(faults),
		 "{\"cut_count\": 1, \"cut_after\": 614400, \"cut_mode\": \"%s\"}", mode);
	proxy_call("/_faults", faults, NULL);

	memset(buf, 0, len);
	rc = im_registry_get_blob_range(r, "inflight/app", &big.digest, offset, len, buf);
	CHECK_INT(rc, 0);
	CHECK(memcmp(buf, big.data + offset, len) == 0);
	CHECK_INT(proxy_call("/_stats", NULL, "cuts") - cuts, 1);
	CHECK_INT(stat_value(&im_stats.registry_retries) - retries, 1);

	free(buf);
	im_registry_free(r);
}

static void test_large_range_reset_midway(void)
{
	check_cut_large_range("reset");
}

static void test_large_range_short_body_fin(void)
{
	check_cut_large_range("fin");
}

static void test_stalled_server(void)
{
	struct im_registry *r = open_registry(NULL, NULL, 2);
	uint64_t start = im_now_ns();
	uint8_t buf[16];

	CHECK_INT(im_registry_get_blob_range(r, "stall/app", &big.digest, 0, 16, buf), -EIO);
	/* One attempt of 2 s: a time-out is not retried. */
	CHECK((im_now_ns() - start) / 1000000000u < 6);
	im_registry_free(r);
}

static void test_refused_connection(void)
{
	struct im_registry *r = open_registry(NULL, NULL, 2);
	uint64_t retries = stat_value(&im_stats.registry_retries);
	uint8_t buf[16];

	CHECK_INT(im_registry_get_blob_range(r, "refused/app", &big.digest, 0, 16, buf), -EIO);
	CHECK_INT(stat_value(&im_stats.registry_retries) - retries, 3);
	im_registry_free(r);
}

static int usage(void)
{
	fprintf(stderr,
		"usage: test_registry_live direct HOST:PORT STORAGE_DIR\n"
		"       test_registry_live auth HOST:PORT USER PASSWORD EXPIRY_SECONDS\n"
		"       test_registry_live faults HOST:PORT FAILURES\n"
		"       test_registry_live tls HOST:PORT CA_FILE\n"
		"       test_registry_live proxy|stall|refused HOST:PORT\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *mode;

	if (argc < 3)
		return usage();
	mode = argv[1];
	host = argv[2];

	make_blob(&big, BIG_BLOB_SIZE, 1);
	make_blob(&small, SMALL_BLOB_SIZE, 2);
	make_blob(&config, 200, 3);

	if (strcmp(mode, "direct") == 0 && argc == 4) {
		storage_dir = argv[3];
		return run_direct();
	}
	if (strcmp(mode, "auth") == 0 && argc == 6) {
		user = argv[3];
		password = argv[4];
		expiry_seconds = (unsigned)atoi(argv[5]);
		return run_auth();
	}
	if (strcmp(mode, "faults") == 0 && argc == 4) {
		failures = (unsigned)atoi(argv[3]);
		return run_faults();
	}
	if (strcmp(mode, "tls") == 0 && argc == 4) {
		ca_file = argv[3];
		return run_tls();
	}
	if (strcmp(mode, "proxy") == 0 && argc == 3) {
		RUN_TEST(test_requests_in_flight_bounded);
		RUN_TEST(test_requests_in_flight_default);
		RUN_TEST(test_large_range_reset_midway);
		RUN_TEST(test_large_range_short_body_fin);
		return check_exit_status();
	}
	if (strcmp(mode, "stall") == 0 && argc == 3) {
		RUN_TEST(test_stalled_server);
		return check_exit_status();
	}
	if (strcmp(mode, "refused") == 0 && argc == 3) {
		RUN_TEST(test_refused_connection);
		return check_exit_status();
	}
	return usage();
}
