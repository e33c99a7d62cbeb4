# docs/ keeps up with the code: every key the config loader accepts (read from gateway/config.c's field tables) has a
# row in docs/configuration.md, in the section of its level, and no row names a key the loader does not take; a default
# in a table is the one the row and the JSON Schema give; the JSON Schema names the same keys; the mock's stub keys, one-line options and admin endpoints, every metric, failure reason
# and HTTP/1 refusal have their row too; the docs' links resolve; and every YAML example in docs/ loads.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use JSON::PP ();
use Test::More;

my $root = "$FindBin::Bin/..";

my %doc = map { $_ => slurp("$root/docs/$_.md") } qw(configuration http operations mock);

# The sections of a Markdown text: {heading text => body up to the next heading of the same or a higher level}.
sub sections {
    my ($text) = @_;
    my (%s, @stack);
    for my $line (split /\n/, $text =~ s/^```.*?^```$//msgr) {
        if ($line =~ /^(#+)\s+(.*?)\s*$/) {
            my $level = length $1;
            pop @stack while @stack && $stack[-1][0] >= $level;
            push @stack, [$level, $2];
            $s{$2} //= '';
            next;
        }
        $s{ $_->[1] } .= "$line\n" for @stack;
    }
    return \%s;
}

# The text of a section up to its first subsection.
sub own_text {
    my ($text, $heading) = @_;
    my ($own) = ($text =~ s/^```.*?^```$//msgr) =~ /^#+\s+\Q$heading\E\s*\n(.*?)(?=^#|\z)/ms;
    return $own // '';
}

# The first cells of the table rows of a text, when they are one `code` span: {name => the whole row}.
sub rows {
    my ($text) = @_;
    my %r;
    for my $line (split /\n/, $text) {
        $r{$1} //= $line if $line =~ /^\|\s*`([^`]+)`\s*\|/;
    }
    return \%r;
}

# ---- the config loader's tables ----------------------------------------------------------------------------------

# (cors:, rate_limit: and auth: are decoded by gateway/cors.c, gateway/ratelimit.c and gateway/auth.c, with tables of the
# same kind)
my $config_c = slurp("$root/gateway/config.c") . slurp("$root/gateway/cors.c") . slurp("$root/gateway/ratelimit.c")
    . slurp("$root/gateway/auth.c");
my %tables;    # name => [[key, unsupported, default or undef], ...]
while ($config_c =~ /static const cf_yfield_t (\w+)\[\] = \{(.*?)\n\};/sg) {
    my ($name, $body) = ($1, $2);
    while ($body =~ /\{(\s*\.key = [^{}]*)\}/g) {
        my $entry = $1;
        my ($key, $type) = $entry =~ /^\s*\.key = "(\w+)",\s*\.type = (\w+)/ or next;
        my ($def) = $entry =~ /\.def = "([^"]*)"/;
        push @{ $tables{$name} }, [$key, $type eq 'CF_YT_UNSUPPORTED', $def];
    }
}
my @defaults = map { my $t = $_; map { [$t, @$_] } grep { defined $_->[2] } @{ $tables{$t} } } sort keys %tables;

# where each table is documented (a heading of docs/configuration.md), and where the schema describes it
my %where = (
    top_fields        => ['Top-level keys',            ['properties']],
    listen_fields     => ['`listen`',                  ['$defs', 'listener', 'properties']],
    tls_fields        => ['`listen[].tls`',            ['$defs', 'listener', 'properties', 'tls', 'properties']],
    limits_fields     => ['`limits`',                  ['properties', 'limits', 'properties']],
    cache_fields      => ['`cache`',                   ['properties', 'cache', 'properties']],
    backend_fields    => ['`backends`',                ['$defs', 'backend', 'properties']],
    retry_budget_fields => ['`backends[].retry_budget`', ['$defs', 'backend', 'properties', 'retry_budget', 'properties']],
    route_fields      => ['`routes`',                  ['$defs', 'route', 'properties']],
    call_fields       => ['`routes[].calls`',          ['$defs', 'call', 'properties']],
    call_cache_fields => ['`routes[].calls[].cache`',  ['$defs', 'cache_policy', 'anyOf', 1, 'properties']],
    breaker_fields    => ['`backends[].circuit_breaker`', ['$defs', 'backend', 'properties', 'circuit_breaker', 'properties']],
    health_fields     => ['`backends[].health`',       ['$defs', 'backend', 'properties', 'health', 'properties']],
    cors_fields       => ['`cors`',                    ['$defs', 'cors', 'properties']],
    ratelimit_fields  => ['`routes[].rate_limit`',     ['$defs', 'rate_limit', 'properties']],
    auth_fields       => ['`auth`',                    ['$defs', 'auth', 'properties']],
    jwt_fields        => ['`auth.jwt`',                ['$defs', 'jwt', 'properties']],
    tracing_fields    => ['`tracing`',                 ['properties', 'tracing', 'properties']],
);

my $conf_sections = sections($doc{configuration});
my $schema = JSON::PP->new->decode(slurp("$root/config/conflux.schema.json"));

subtest 'every key of gateway/config.c has its row in docs/configuration.md' => sub {
    ok(keys %tables >= 9, 'the field tables were found in gateway/config.c: ' . join(', ', sort keys %tables));
    for my $table (sort keys %tables) {
        my $w = $where{$table};
        ok($w, "$table: this test knows which section of docs/configuration.md documents it (add it to %where)") or next;
        my $section = $conf_sections->{ $w->[0] };
        ok(defined $section, "docs/configuration.md has a section \"$w->[0]\"") or next;
        my $rows = rows($section);
        for my $k (@{ $tables{$table} }) {
            my ($key, $unsupported, $def) = @$k;
            ok(exists $rows->{$key}, "$w->[0]: a row for `$key`") or next;
            like($rows->{$key}, qr/not supported yet/i, "$w->[0]: `$key` is said to be refused") if $unsupported;
            # | key | type | default | bounds | meaning |: the default cell names the table's default
            like((split /\|/, $rows->{$key})[3] // '', qr/`\Q$def\E`/, "$w->[0]: `$key` defaults to `$def`") if defined $def;
        }
        my %known = map { $_->[0] => 1 } @{ $tables{$table} };
        ok($known{$_}, "$w->[0]: `$_` is a key the loader takes") for sort keys %$rows;
    }
};

ok(@defaults >= 15, scalar(@defaults) . ' defaults found in the tables of gateway/config.c');

# A schema "default" as the config file would write it: false, null, 10000, "10s".
sub as_written {
    my ($v) = @_;
    return 'null' unless defined $v;
    return $v ? 'true' : 'false' if JSON::PP::is_bool($v);
    return "$v";
}

subtest 'the JSON Schema names the keys the loader takes (and leaves the refused ones out), with their defaults' => sub {
    for my $table (sort keys %tables) {
        my $node = $schema;
        $node = ref $node eq 'ARRAY' ? $node->[$_] : $node->{$_} for @{ $where{$table}[1] // [] };
        ok(ref $node eq 'HASH', "$table: the schema has " . join('.', @{ $where{$table}[1] // [] })) or next;
        my %in_schema = map { $_ => 1 } keys %$node;
        for my $k (@{ $tables{$table} }) {
            my ($key, $unsupported, $def) = @$k;
            if ($unsupported) {
                ok(!$in_schema{$key}, "$table: `$key` (refused) is not in the schema");
            } else {
                ok($in_schema{$key}, "$table: `$key` is in the schema");
            }
            if ($in_schema{$key} && ref $node->{$key} eq 'HASH') {
                my $has = exists $node->{$key}{default};
                if (defined $def) {
                    ok($has, "$table: `$key` has a default in the schema")
                        and is(as_written($node->{$key}{default}), $def, "$table: the schema's default of `$key`");
                } else {
                    ok(!$has, "$table: `$key` has no default in the schema, as in the table ("
                        . ($has ? as_written($node->{$key}{default}) : '') . ')');
                }
            }
            delete $in_schema{$key};
        }
        is_deeply([sort keys %in_schema], [], "$table: the schema has no key the loader lacks");
    }
};

# ---- conflux-mock ------------------------------------------------------------------------------------------------

subtest 'docs/mock.md: every stub key, file key, one-line option and admin endpoint' => sub {
    my $stubs_c = slurp("$root/mocks/stubs.c");
    my $mock = sections($doc{mock});
    my ($stub_table) = $stubs_c =~ /static const cf_yfield_t stub_fields\[\] = \{(.*?)\n\};/s;
    my @stub_keys = ($stub_table // '') =~ /\{"(\w+)", CF_YT_/g;
    ok(@stub_keys >= 10, 'stub keys found in mocks/stubs.c: ' . join(', ', @stub_keys));
    my $rows = rows(own_text($doc{mock}, 'Stub keys'));
    ok(exists $rows->{$_}, "Stub keys: a row for `$_`") for @stub_keys;
    my %known = map { $_ => 1 } @stub_keys;
    ok($known{$_}, "Stub keys: `$_` is a stub key") for sort keys %$rows;

    my ($file_table) = $stubs_c =~ /int cf_mock_load_file.*?cf_yfield_t fields\[\] = \{(.*?)\n    \};/s;
    my @file_keys = ($file_table // '') =~ /\{"(\w+)", CF_YT_/g;
    ok(@file_keys >= 2, 'stubs file keys found: ' . join(', ', @file_keys));
    $rows = rows($mock->{'Stubs files'} // '');
    ok(exists $rows->{$_}, "Stubs files: a row for `$_`") for @file_keys;

    my ($options) = $stubs_c =~ /static int is_option.*?keys\[\] = \{(.*?)\};/s;
    my @options = ($options // '') =~ /"(\w+)="/g;
    ok(@options >= 5, 'one-line options found: ' . join(', ', @options));
    $rows = rows($mock->{'One-line stubs: `--stub`'} // '');
    ok(exists $rows->{"$_="}, "One-line stubs: a row for `$_=`") for @options;

    my $admin_c = slurp("$root/mocks/admin.c");
    my @endpoints = $admin_c =~ /\{"([A-Z]+)", "(\/__mock\/\w+)", on_\w+\}/g;
    ok(@endpoints >= 12, 'admin endpoints found in mocks/admin.c');
    $rows = rows($mock->{'The admin API'} // '');
    while (my ($method, $path) = splice @endpoints, 0, 2) {
        ok(exists $rows->{"$method $path"}, "The admin API: a row for `$method $path`");
    }
    ok(exists $rows->{'GET /__mock/respond'}, 'The admin API: a row for `GET /__mock/respond`');
};

# ---- metrics, failure reasons, HTTP/1 refusals -------------------------------------------------------------------

subtest 'docs/operations.md: every metric on /metrics' => sub {
    my @names = slurp("$root/gateway/metrics.c") =~ /header\(out, "(\w+)"/g;
    ok(@names >= 20, scalar(@names) . ' metric families found in gateway/metrics.c');
    my $rows = rows(sections($doc{operations})->{Metrics} // '');
    ok(exists $rows->{$_}, "Metrics: a row for `$_`") for @names;
    my %known = map { $_ => 1 } @names;
    ok($known{$_}, "Metrics: `$_` is a metric conflux exports") for sort keys %$rows;
};

my $http = sections($doc{http});

subtest 'docs/http.md: every failure reason, with its Proxy-Status error type and status' => sub {
    # gateway/reason.c's table: [CF_REASON_X] = {"name", "error type" or NULL, status, "label" or NULL}
    my @rows = slurp("$root/gateway/reason.c") =~ /\[CF_REASON_(?!NONE\])\w+\] = \{"(\w+)", (?:"(\w+)"|NULL), (\d+), /g;
    my %reason;
    while (my ($name, $type, $status) = splice @rows, 0, 3) {
        $reason{$name} = { type => $type, status => $status };
    }
    ok(keys %reason >= 12, 'the reasons were found in gateway/reason.c: ' . join(', ', sort keys %reason));
    my $rows = rows($http->{'Failure reasons'} // '');
    for my $name (sort keys %reason) {
        my $row = $rows->{$name};
        ok(defined $row, "Failure reasons: a row for `$name`") or next;
        my @cells = map { s/^\s+|\s+$//gr } split /\|/, $row;
        my ($type, $status) = @{ $reason{$name} }{qw(type status)};
        if (defined $type) {
            like($cells[3], qr/`\Q$type\E`/, "Failure reasons: `$name` is reported as `$type`");
        } else {
            unlike($cells[3], qr/`\w+`/, "Failure reasons: `$name` has no error type");
        }
        # status_NNN: the upstream's 4xx, else 502 (the table holds 0)
        my $want = $status == 0 ? 502 : $status;
        like($cells[4] // '', qr/\b$want\b/, "Failure reasons: `$name` answers $want when the call is required")
            unless $name eq 'cancelled';
    }
    ok(exists $reason{$_}, "Failure reasons: `$_` is a reason of gateway/reason.c") for sort keys %$rows;
};

subtest 'docs/http.md: every HTTP/1 refusal, with its status and metric label' => sub {
    my @results = slurp("$root/gateway/h1guard.c") =~ /\[CF_H1G_ERR_\w+\] = \{"(?:[^"\\]|\\.)*", "(\w+)", (\d+)\}/g;
    ok(@results >= 40, 'the refusals were found in gateway/h1guard.c');
    my %label = @results;
    $label{$_} = $_ =~ /not_found/ ? 404 : $_ =~ /bad_request/ ? 400 : $_ =~ /unauthorized/ ? 401 : 405 for slurp("$root/gateway/conn.c") =~ /"(expect_\w+)"/g;
    my $rows = rows($http->{'Strict HTTP/1 framing'} // '');
    for my $l (sort keys %label) {
        ok(exists $rows->{$l}, "Strict HTTP/1 framing: a row for `$l`") or next;
        like($rows->{$l}, qr/\|\s*$label{$l}\s*\|/, "`$l`: $label{$l}");
    }
};

# ---- links and names ---------------------------------------------------------------------------------------------

# GitHub's anchors: lower case, punctuation but '-' and '_' dropped, spaces as '-', repeats numbered.
sub anchors {
    my %a;
    for my $h ($_[0] =~ s/^```.*?^```$//msgr =~ /^#+\s+(.*?)\s*$/mg) {
        (my $id = lc $h) =~ s/[^\w\- ]//g;
        $id =~ s/ /-/g;
        my $n = 0;
        $n++ while exists $a{ $n ? "$id-$n" : $id };
        $a{ $n ? "$id-$n" : $id } = 1;
    }
    return \%a;
}

subtest 'links between README.md and docs/ resolve' => sub {
    my %files = (map({ ("docs/$_.md" => $doc{$_}) } keys %doc), 'README.md' => slurp("$root/README.md"));
    for my $file (sort keys %files) {
        (my $dir = $file) =~ s{[^/]*$}{};
        my $text = $files{$file} =~ s/^(    |\t).*$//mgr =~ s/```.*?```//sgr;
        while ($text =~ /\]\(([^)\s]+)\)/g) {
            my $link = $1;
            next if $link =~ m{^[a-z]+://};
            my ($path, $frag) = $link =~ /^([^#]*)(?:#(.*))?$/;
            my $target = $path eq '' ? $file : "$dir$path";
            1 while $target =~ s{[^/]+/\.\./}{};
            ok(-e "$root/$target", "$file: $link: $target exists") or next;
            next unless defined $frag;
            my $anchors = anchors($target eq $file ? $files{$file} : slurp("$root/$target"));
            ok($anchors->{$frag}, "$file: $link: the anchor #$frag exists in $target");
        }
    }
};

subtest 'README.md, docs/ and the build and test files name no outside document' => sub {
    my $name = 'SP' . 'EC';    # spelled in two pieces, so that this file passes its own check
    my @files = ('README.md', 'CMakeLists.txt', 'Makefile', 'config/conflux.schema.json', 'config/conflux.yaml',
        'config/mock-stubs.yaml', 'systemd/conflux.service', 'bench/README.md', map { s{^\Q$root/\E}{}r }
        glob("$root/docs/*.md"), glob("$root/t/*.t"), glob("$root/t/lib/*"));
    for my $f (@files) {
        my $text = slurp("$root/$f");
        unlike($text, qr/\b$name(\.md|\s*§|\s+section|\s+\d|'s)/, "$f does not name it");
    }
};

# ---- the examples ------------------------------------------------------------------------------------------------

my $conflux = bindir() . '/conflux';
my $mock = bindir() . '/conflux-mock';
my $dir = tmpdir();

# A self-signed certificate stands for the /etc/conflux/*.pem files the examples name.
my ($cert, $key) = self_signed_cert();
my $have_tls = defined $cert;

# What a fragment lacks comes from here: every backend the examples name, and a route.
my %base = (
    listen   => "listen:\n  - host: 127.0.0.1\n    port: 18080\n",
    backends => "backends:\n" . join('', map { "  $_:\n    url: http://127.0.0.1:9001\n" }
        qw(users orders recs carts inventory reviews legacy gitlab mock)),
    routes   => "routes:\n  - path: /docs-check/{rest*}\n    proxy: %s\n",
);

# Runs @cmd; returns (exit code, or -1 when a signal ended it; stderr). Bounded by 10 s.
sub run {
    my $r = run_cmd([@_], timeout => 10);
    return ($r->{code} // -1, $r->{err});
}

# conflux-mock loads a stubs file: it says "listening on" and is stopped (the guard checks it exits 0); 0 and "" then,
# else 1 and what it said.
sub mock_loads {
    my ($file) = @_;
    my $g = eval { spawn(name => 'mock-example', cmd => [$mock, '-c', $file, '--port', '0'], ready => qr/^listening on /m, timeout => 10) };
    return (1, $@) unless $g;
    $g->stop;
    return (0, '');
}

subtest 'every YAML example in docs/ loads' => sub {
    plan skip_all => "$conflux is not built" unless -x $conflux && -x $mock;
    my $n = 0;
    for my $name (sort keys %doc) {
        my @blocks = $doc{$name} =~ /^```yaml\n(.*?)^```$/msg;
        for my $yaml (@blocks) {
            my $file = sprintf '%s/%s-%02d.yaml', $dir, $name, ++$n;
            my $what = "docs/$name.md, example $n (" . (($yaml =~ /^(\S.*)$/m)[0]) . ')';
            if ($yaml =~ /^stubs:/m) {
                write_file($file, $yaml);
                my ($rc, $err) = mock_loads($file);
                is($rc, 0, "$what: conflux-mock loads it") or diag($err);
                next;
            }
            my %has = map { $_ => 1 } $yaml =~ /^(\w+):/mg;
            my $text = $yaml;
            $text = $base{listen} . $text unless $has{listen};
            if (!$has{backends}) {
                $text .= $base{backends};
            }
            if (!$has{routes}) {
                my ($first) = ($has{backends} ? $yaml : $base{backends}) =~ /^backends:\s*\n\s+([\w-]+):/m;
                $text .= sprintf $base{routes}, $first;
            }
            if ($text =~ m{/etc/conflux/\w[\w-]*\.pem}) {
                if (!$have_tls) {
                    note("$what: no openssl to make the certificate it names: left out");
                    next;
                }
                $text =~ s{/etc/conflux/key\.pem}{$key}g;
                $text =~ s{/etc/conflux/[\w-]+\.pem}{$cert}g;
            }
            # a JWK Set for the auth: examples (one Ed25519 key: OpenSSL takes any 32 bytes but the 14 encodings of a point
            # of small order, which conflux skips; 32 zero bytes are one of them)
            $text =~ s{/etc/conflux/jwks\.json}{write_file("$dir/jwks.json",
                '{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "' . ('B' x 42) . 'A"}]}')}ge;
            write_file($file, $text);
            my ($rc, $err) = run($conflux, '-t', '-c', $file);
            is($rc, 0, "$what: conflux -t accepts it") or diag("$err\n$text");
        }
    }
    ok($n >= 10, "$n examples checked");
};

done_testing();
