# Access log: one JSON line per request naming each call; "-" is stderr; a file works, is reopened on SIGHUP
# (rotation), and holds exactly one line per request, all of them written by a graceful stop.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use JSON::PP;
use Test::More;

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /users/{id}
    body: '{"id": "{id}"}'
  - path: /slow
    body: '{"slow": true}'
    delay: 2s
  - path: /boom
    status: 503
    body: '{"error": "busy"}'
EOF
my $m = $mock->port;

sub config {
    my ($log) = @_;
    return <<"EOF";
access_log: "$log"
backends:
  svc:
    url: http://127.0.0.1:$m
routes:
  - path: /u/{id}
    calls:
      - { name: profile, backend: svc, path: "/users/{id}" }
      - { name: slow, backend: svc, path: /slow, timeout: 150ms }
      - { name: boom, backend: svc, path: /boom }
  - path: /fast/{id}
    calls:
      - { name: profile, backend: svc, path: "/users/{id}" }
  - path: /p/{rest*}
    proxy: svc
EOF
}

sub read_lines {
    my ($path) = @_;
    open my $fh, '<', $path or return ();
    my @l = <$fh>;
    close $fh;
    return @l;
}

# waits (up to 5 s) until $path has at least $n lines; returns them
sub wait_lines {
    my ($path, $n) = @_;
    my @l;
    wait_until(sub { @l = read_lines($path); @l >= $n }, 5);
    return @l;
}

my $json = JSON::PP->new->utf8;

subtest 'a file: one JSON line per request, each call named with status, duration, reason' => sub {
    my $path = tmpdir() . '/access.log';
    my $gw   = spawn_conflux(config($path));
    my $r    = http_get($gw->url('/u/42?token=secret'));
    is $r->{status}, 200, 'aggregated request';
    is http_get($gw->url('/nope'))->{status}, 404, 'unrouted';
    is http_get($gw->url('/p/users/7'))->{status}, 200, 'proxied';
    my @lines = wait_lines($path, 3);
    is scalar(@lines), 3, 'three lines';
    my @docs = map { eval { $json->decode($_) } } @lines;
    is scalar(@docs), 3, 'each line is one JSON object' or diag @lines;
    my ($u, $none, $p) = @docs;

    like $u->{time}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'time: RFC 3339, ms, UTC';
    is $u->{method}, 'GET', 'method';
    is $u->{path}, '/u/42', 'path (without the query string)';
    unlike $lines[0], qr/secret/, 'the query string is not logged';
    is $u->{route}, '/u/{id}', 'route pattern';
    is $u->{status}, 200, 'status';
    is $u->{client}, '127.0.0.1', 'client address';
    ok $u->{duration} >= 140 && $u->{duration} < 1500, "duration in ms ($u->{duration}; the 150 ms timeout, h2o timers may fire a few ms early)";
    is_deeply [map { $_->{name} } @{ $u->{calls} }], [qw(profile slow boom)], 'calls in config order';
    my %c = map { $_->{name} => $_ } @{ $u->{calls} };
    is $c{profile}{status}, 200, 'profile: status';
    is $c{profile}{reason}, undef, 'profile: no reason';
    is $c{profile}{backend}, 'svc', 'profile: backend';
    ok $c{profile}{duration} > 0 && $c{profile}{duration} < 100, "profile: duration ($c{profile}{duration} ms)";
    ok exists $c{profile}{cache}, 'cache state key present';
    is $c{slow}{reason}, 'timeout', 'slow: reason timeout';
    is $c{slow}{status}, undef, 'slow: no status';
    ok $c{slow}{duration} >= 140 && $c{slow}{duration} < 1000, "slow: duration ($c{slow}{duration} ms)";
    is $c{boom}{reason}, 'status_503', 'boom: reason status_503';
    is $c{boom}{status}, 503, 'boom: upstream status';

    is $none->{route}, undef, 'unrouted: route null';
    is $none->{status}, 404, 'unrouted: 404';
    is_deeply $none->{calls}, [], 'unrouted: no calls';
    is $p->{route}, '/p/{rest*}', 'proxy route';
    is $p->{calls}[0]{name}, 'svc', 'proxy: one call named after the backend';
    is $p->{calls}[0]{status}, 200, 'proxy: upstream status';

    # hostile bytes in the path stay valid JSON
    my ($resp) = raw_exchange($gw->port, "GET /x\"\\\xff\xc3\xa9 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    like $resp, qr{^HTTP/1\.1 404}, 'a path with bytes that are not UTF-8: 404 (not a crash)';
    @lines = wait_lines($path, 4);
    is scalar(@lines), 4, 'and a fourth line';
    my $d = eval { $json->decode($lines[3] // '') };
    ok $d, 'a path with a quote, a backslash, an invalid UTF-8 byte and a valid one: still JSON' or diag $lines[3];
    is $d->{path}, "/x\"\\\x{fffd}\x{e9}", 'the invalid byte became U+FFFD, the rest is kept' if $d;

    # a request the framing checks refuse before libh2o sees it: a line too, with why
    ($resp) = raw_exchange($gw->port, "GET /fast/1 HTTP/1.1\nHost: x\n\n");
    like $resp, qr{^HTTP/1\.1 400}, 'a bare LF: 400';
    @lines = wait_lines($path, 5);
    is scalar(@lines), 5, 'and a fifth line';
    $d = eval { $json->decode($lines[4] // '') };
    is_deeply({ map { ($_ => $d->{$_}) } qw(client method path route status refused) },
              { client => '127.0.0.1', method => undef, path => undef, route => undef, status => 400, refused => 'bare_lf' },
              'client, status and the reason; no method, path or route') or diag $lines[4];

    # rotation: move the file away, SIGHUP, the next lines go to a new file at the configured path
    @lines = read_lines($path);
    my $before = scalar(@lines);
    rename $path, "$path.1" or die;
    $gw->signal('HUP');
    ok(wait_until(sub { $gw->log_text =~ /reloaded/ }, 5), 'SIGHUP: reloaded');
    # the writer thread reopens the file after the reload; a line written once the new file exists goes into it
    ok(wait_until(sub { -e $path }, 5), 'the access log is opened again at its path');
    is http_get($gw->url('/fast/1'))->{status}, 200, 'request after rotation';
    my @new = wait_lines($path, 1);
    is scalar(@new), 1, 'the new file has the new line';
    like $new[0] // '', qr{"path":"/fast/1"}, 'and it is that request';
    is scalar(read_lines("$path.1")), $before, 'the rotated file kept the old lines only';
    is $gw->stop, 0, 'exits 0';
};

subtest '"-" writes to stderr' => sub {
    my $gw = spawn_conflux(config('-'));
    is http_get($gw->url("/fast/$_"))->{status}, 200, "request $_" for 1 .. 3;
    my @l;
    wait_until(sub { @l = grep { /^\{/ } split /\n/, $gw->log_text; @l >= 3 }, 5);
    is scalar(@l), 3, 'three JSON lines on stderr';
    my @paths = map { (eval { $json->decode($_) } // {})->{path} // '' } @l;
    is_deeply \@paths, ['/fast/1', '/fast/2', '/fast/3'], 'in order';
    is $gw->stop, 0, 'exits 0';
};

subtest 'many requests: exactly that many lines, all written by a graceful stop' => sub {
    my $path = tmpdir() . '/many.log';
    my $gw   = spawn_conflux(config($path));
    my $n    = 200;
    my $done = 0;
    for (1 .. $n / 20) {
        my ($r) = http_parallel(20, $gw->url('/fast/9'));
        $done += grep { $_->{status} == 200 } @$r;
    }
    is $done, $n, "$n requests answered";
    is $gw->stop, 0, 'graceful stop';
    my @l = read_lines($path);
    is scalar(@l), $n, "exactly $n lines";
    is scalar(grep { my $d = eval { $json->decode($_) }; $d && $d->{path} eq '/fast/9' && $d->{status} == 200 } @l), $n,
        'each a JSON line for that request';
};

subtest 'an unwritable access_log stops startup with a clear message' => sub {
    my $file = write_file(tmpdir() . '/bad.yaml', "listen:\n  - host: 127.0.0.1\n    port: " . empty_port() . "\n"
                          . config('/nonexistent-dir/access.log'));
    my $r = run_cmd([bindir() . '/conflux', '-c', $file]);
    is $r->{code}, 1, 'exit 1';
    like $r->{err}, qr{access_log: cannot open /nonexistent-dir/access\.log: No such file or directory}, 'names the file and why';
};

done_testing;
