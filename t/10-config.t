# conflux -t and --explain: the sample config passes, bad files fail with "file:line:col: key.path: message".
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Test::More;

my $root = "$FindBin::Bin/..";
my $conflux = bindir() . '/conflux';
plan skip_all => "$conflux is not built" unless -x $conflux;

my $dir = tmpdir();
my $sample = "$root/config/conflux.yaml";

# Runs conflux with @args; returns (exit code, or -1 when a signal ended it; stdout; stderr). Bounded by 10 s.
sub run_conflux {
    my $r = run_cmd([$conflux, @_], timeout => 10);
    return ($r->{code} // -1, $r->{out}, $r->{err});
}

my $n = 0;
sub write_config {
    my $path = sprintf '%s/c%02d.yaml', $dir, ++$n;
    open my $fh, '>', $path or die "$path: $!";
    print $fh $_[0];
    close $fh;
    return $path;
}

# -t on a bad config: exit 1, exactly one line on stderr, naming the file. $expected is the message without "FILE:".
sub refused {
    my ($name, $yaml, $expected) = @_;
    subtest $name => sub {
        my $file = write_config($yaml);
        my ($rc, $out, $err) = run_conflux('-t', '-c', $file);
        is($rc, 1, 'exit 1');
        is($err, "$file:$expected\n", 'the message on stderr');
        is($out, '', 'nothing on stdout');
    };
}

my $base = <<'YAML';
listen:
  - port: 8080
backends:
  users:
    url: http://127.0.0.1:9001
routes:
YAML

subtest 'the sample config passes -t' => sub {
    my ($rc, $out, $err) = run_conflux('-t', '-c', $sample);
    is($rc, 0, 'exit 0') or diag($err);
    unlike($err, qr/\d+:\d+: /, 'no error message');
};

subtest 'a good config passes -t' => sub {
    my $file = write_config($base . <<'YAML');
  - path: /u/{id}
    calls:
      - name: profile
        backend: users
        path: /users/{id}
YAML
    my ($rc, $out, $err) = run_conflux('-t', '-c', $file);
    is($rc, 0, 'exit 0') or diag($err);
};

subtest 'a missing file' => sub {
    my ($rc, $out, $err) = run_conflux('-t', '-c', "$dir/nonexistent.yaml");
    is($rc, 1, 'exit 1');
    is($err, "$dir/nonexistent.yaml: cannot open: No such file or directory\n", 'says so');
};

refused('invalid YAML', "listen: [\n", "2:1: invalid YAML: did not find expected node content while parsing a flow node");
refused('a typo in a key', $base . <<'YAML', '10:9: routes[0].calls[0]: unknown key "timout" (did you mean "timeout"?)');
  - path: /u/{id}
    calls:
      - name: profile
        timout: 1s
YAML
refused('a bad duration', $base . <<'YAML', '12:18: routes[0].calls[0].timeout: "5 sec" is not a duration (use 500ms, 2s, 1m)');
  - path: /u/{id}
    calls:
      - name: profile
        backend: users
        path: /users/{id}
        timeout: 5 sec
YAML
refused('an unknown backend', $base . <<'YAML', '10:18: routes[0].calls[0].backend: unknown backend "user" (backends: users)');
  - path: /u/{id}
    calls:
      - name: profile
        backend: user
YAML
refused('an unknown route parameter', $base . <<'YAML', '11:15: routes[0].calls[0].path: unknown route parameter {user_id} (the route has id)');
  - path: /u/{id}
    calls:
      - name: profile
        backend: users
        path: /users/{user_id}
YAML
refused('an unknown call', $base . <<'YAML', '11:15: routes[0].calls[0].path: unknown call "prof" (calls: profile)');
  - path: /u/{id}
    calls:
      - name: profile
        backend: users
        path: /users/{prof.id}
YAML
refused('a dependency cycle', $base . <<'YAML', '11:15: routes[0].calls[0].path: the calls wait for each other in a cycle: profile -> recs -> profile');
  - path: /u/{id}
    calls:
      - name: profile
        backend: users
        path: /users/{recs.owner}
      - name: recs
        backend: users
        path: /recs/{profile.segment}
YAML
refused('a merge collision', $base . <<'YAML', '13:9: routes[0].calls[1]: calls "a" and "b" may both produce any key in merge: merge: set allow: on them, or on_conflict: first|last on the route');
  - path: /m
    merge: merge
    calls:
      - name: a
        backend: users
        path: /a
      - name: b
        backend: users
        path: /b
YAML
refused('two routes for the same requests', $base . <<'YAML', '9:11: routes[1].path: route "/u/{other}" conflicts with route "/u/{id}": same path shape and method GET');
  - path: /u/{id}
    proxy: users
  - path: /u/{other}
    methods: [GET, POST]
    proxy: users
YAML
refused('a bad cache size', $base . "  - path: /x\n    proxy: users\ncache:\n  memory: 64 megs\n", '10:11: cache.memory: "64 megs" is not a size (use 512KiB, 64MiB, or a byte count)');
refused('threads', $base . "  - path: /x\n    proxy: users\nthreads: 100\n", '9:10: threads: 100 is out of range (1 to 64)');
refused('ftp backend', "listen: [{port: 1}]\nbackends:\n  b:\n    url: ftp://example.com\nroutes:\n  - path: /\n    proxy: b\n",
    '4:10: backends.b.url: "ftp://example.com" is not an http:// or https:// URL (e.g. http://127.0.0.1:9001)');

refused('encoded_slash: keep where no value fills a path segment', $base . <<'YAML', '12:24: routes[0].calls[0].encoded_slash: keep has no effect: no value of /users?id={id} fills a path segment (query values and {name*} captures are not concerned)');
  - path: /u/{id}
    calls:
      - name: profile
        backend: users
        path: /users?id={id}
        encoded_slash: keep
YAML

subtest '--explain shows encoded_slash: keep under its call' => sub {
    my $file = write_config($base . <<'YAML');
  - path: /p/{id}
    calls:
      - name: project
        backend: users
        path: /projects/{id}
        encoded_slash: keep
YAML
    my ($rc, $out, $err) = run_conflux('--explain', '-c', $file);
    is($rc, 0, 'exit 0') or diag($err);
    like($out, qr{      project: /projects/\{id\}  .*\n        timeout .*\n        encoded_slash: keep: a '/' in a value that fills one path segment is sent as %2F; "\.", "\.\." and '\\' are still refused\n},
        'the keep line follows the call');
};

subtest '--explain on the sample' => sub {
    my ($rc, $out, $err) = run_conflux('--explain', '-c', $sample);
    is($rc, 0, 'exit 0') or diag($err);
    like($out, qr{^route /storefront/\{user_id\}  \[GET, HEAD\]}m, 'the storefront route and its methods');
    like($out, qr{deadline 700ms; the longest chain of timeouts is 700ms: profile \(300ms\) -> recommendations \(400ms\)},
        'the default deadline follows the dependency chain');
    like($out, qr{stage 0: 4 calls, in parallel at once\n(?:      .*\n|        .*\n)*?      profile: /users/\{user_id\}},
        'profile runs in stage 0');
    like($out, qr{stage 1: 1 call, as soon as its dependencies end\n      recommendations: /recs/\{profile\.segment\}},
        'recommendations runs in stage 1');
    like($out, qr{after profile \(starts when it ends, finishes by 700ms at the latest\)}, 'and waits for profile');
    like($out, qr{reviews: /reviews/\{query\.sku\}  \(backend reviews: http://127\.0\.0\.1:9001\)\n        timeout 150ms, optional: on error the key is null},
        'reviews: short timeout, null on error');
    like($out, qr{profile gives: id, name, segment\n    cart gives: items, cart_total\n    collisions: none}, 'merge keys');
    like($out, qr{^route /api/\{rest\*\}  \[GET, HEAD, POST, PUT, DELETE\].*\n  proxy -> mock \(http://127\.0\.0\.1:9001\)}m,
        'the proxy route');
};

subtest '--explain shows tracing: sampling and where spans go' => sub {
    my ($rc, $out, $err) = run_conflux('--explain', '-c', $sample);
    is($rc, 0, 'exit 0') or diag($err);
    like($out, qr{^tracing: new traces sampled at 0, a continued trace keeps the client's sampled flag; no span export$}m,
         'the defaults: nothing sampled, no export');
    my $file = write_config($base . "  - path: /x\n    proxy: users\n"
        . "tracing: { otlp: 'http://127.0.0.1:4318/v1/traces', sample: 0.25, parent_based: false, batch: 100, delay: 2s }\n");
    ($rc, $out, $err) = run_conflux('--explain', '-c', $file);
    is($rc, 0, 'exit 0') or diag($err);
    like($out, qr{^tracing: new traces sampled at 0\.25, continued traces too; sampled spans exported to http://127\.0\.0\.1:4318/v1/traces \(service conflux\), batches of 100 or every 2s, 5s a request, 2048 spans queued at most \(then dropped\)$}m,
         'an export: its URL and bounds');
};

subtest '--explain stages of a diamond' => sub {
    my $file = write_config($base . <<'YAML');
  - path: /d/{id}
    merge: merge
    on_conflict: first
    calls:
      - name: d
        backend: users
        path: /d?b={b.x}&c={c.y}
        timeout: 50ms
      - name: b
        backend: users
        path: /b/{a.id}
        timeout: 200ms
        allow: [k]
      - name: c
        backend: users
        path: /c/{a.id}
        timeout: 300ms
        allow: [k, j]
      - name: a
        backend: users
        path: /a/{id}
        timeout: 100ms
        allow: [id]
YAML
    my ($rc, $out, $err) = run_conflux('--explain', '-c', $file);
    is($rc, 0, 'exit 0') or diag($err);
    my @stages = $out =~ /^  stage (\d+): (\d+) calls?/mg;
    is_deeply(\@stages, [0, 1, 1, 2, 2, 1], 'three stages: a; b and c; d');
    like($out, qr{stage 0: 1 call, at once\n      a: /a/\{id\}}, 'a first');
    like($out, qr{stage 1: 2 calls, in parallel, each as soon as its dependencies end\n      b: .*\n.*\n.*\n.*\n      c: }, 'then b and c');
    like($out, qr{stage 2: 1 call.*\n      d: .*\n.*\n        after b, c }, 'then d, after b and c');
    like($out, qr{deadline 450ms; the longest chain of timeouts is 450ms: a \(100ms\) -> c \(300ms\) -> d \(50ms\)}, 'the deadline');
    like($out, qr{on a conflict the first call in config order wins}, 'on_conflict');
    like($out, qr{collisions:\n      d and b both give "k"\n      d and c both give "k"\n      b and c both give "k"\n}, 'collisions listed');
};

subtest '--explain refuses a bad file like -t' => sub {
    my $file = write_config("listen: [{port: 1}]\n");
    my ($rc, $out, $err) = run_conflux('--explain', '-c', $file);
    is($rc, 1, 'exit 1');
    is($err, "$file:1:1: missing routes:\n", 'the message');
    is($out, '', 'no plan');
};

refused('tracing.sample above 1', $base . "  - path: /x\n    proxy: users\ntracing: { sample: 1.5 }\n",
        '9:20: tracing.sample: "1.5" is not a number from 0 to 1 (the share of new traces sampled)');
refused('tracing.sample not a number', $base . "  - path: /x\n    proxy: users\ntracing: { sample: nan }\n",
        '9:20: tracing.sample: "nan" is not a number from 0 to 1 (the share of new traces sampled)');
refused('tracing.sample as a hex float', $base . "  - path: /x\n    proxy: users\ntracing: { sample: 0x1p-1 }\n",
        '9:20: tracing.sample: "0x1p-1" is not a number from 0 to 1 (the share of new traces sampled)');
refused('tracing.batch 0', $base . "  - path: /x\n    proxy: users\ntracing: { batch: 0 }\n",
        '9:19: tracing.batch: 0 is out of range (1 to 10000)');
refused('tracing: an unknown key', $base . "  - path: /x\n    proxy: users\ntracing: { otel: x }\n",
        '9:12: tracing: unknown key "otel" (did you mean "otlp"?)');
refused('tracing.otlp not http', $base . "  - path: /x\n    proxy: users\ntracing: { otlp: ftp://c/v1/traces }\n",
        '9:18: tracing.otlp: "ftp://c/v1/traces" is not an http:// or https:// URL (e.g. http://127.0.0.1:4318/v1/traces)');
done_testing;
