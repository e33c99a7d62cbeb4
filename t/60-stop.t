# SIGTERM/SIGINT: stop accepting, finish what was accepted (bounded by shutdown_timeout), /healthz 503, exit 0.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use JSON::PP;
use POSIX ();
use Test::More;
use Time::HiRes qw(time sleep);

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /slow/{id}
    body: '{"id": "{id}"}'
    delay: 800ms
  - path: /hang
    body: '{}'
    delay: 5s
EOF
my $m = $mock->port;

sub conf {
    my ($extra) = @_;
    my $admin = empty_port();
    return (<<"EOF", $admin);
threads: 2
admin: 127.0.0.1:$admin
$extra
backends:
  svc: { url: "http://127.0.0.1:$m", timeout: 6s }
routes:
  - path: /s/{id}
    calls: [{ name: one, backend: svc, path: "/slow/{id}" }]
  - path: /hang
    calls: [{ name: one, backend: svc, path: "/hang" }]
EOF
}

sub mock_total {
    my $r = http_get($mock->url('/__mock/stats'));
    return $r->{status} == 200 ? JSON::PP->new->decode($r->{body})->{total} : -1;
}

# runs $n concurrent GETs in a child; returns its pid and the file it writes "status count" lines to
sub background_load {
    my ($n, $url) = @_;
    my $out = tmpdir() . "/load-" . int(rand(1e9));
    my $pid = fork // die;
    if ($pid == 0) {
        my ($res) = http_parallel($n, $url);
        my %c;
        $c{$_->{status}}++ for @$res;
        write_file($out, join('', map { "$_ $c{$_}\n" } sort keys %c));
        POSIX::_exit(0); # the guards' END blocks belong to the parent
    }
    return ($pid, $out);
}

sub read_counts {
    my $file = shift;
    open my $fh, '<', $file or return {};
    return { map { split ' ' } <$fh> };
}

sub wait_exit {
    my ($pid, $timeout) = @_;
    my $deadline = time + $timeout;
    while (time < $deadline) {
        return $? if waitpid($pid, POSIX::WNOHANG()) == $pid;
        sleep 0.02;
    }
    return undef;
}

subtest 'SIGTERM under load: every accepted request finishes, /healthz says draining, exit 0' => sub {
    my ($yaml, $admin) = conf('');
    my $gw = spawn_conflux($yaml);
    http_request('POST', $mock->url('/__mock/reset'));
    my ($load, $out) = background_load(40, $gw->url('/s/t'));
    my $deadline = time + 5;
    sleep 0.02 while mock_total() < 40 && time < $deadline;
    is(mock_total(), 40, 'all 40 requests reached the upstream');
    is(http_get("http://127.0.0.1:$admin/healthz")->{status}, 200, '/healthz 200 before');

    my $t0 = time;
    $gw->signal('TERM');
    sleep 0.2;
    my $h = http_get("http://127.0.0.1:$admin/healthz");
    is($h->{status}, 503, '/healthz 503 while draining');
    is($h->{body}, "draining\n", 'body says draining');
    my $r = http_get($gw->url('/s/late'));
    is($r->{status}, 599, 'new connections are refused') or diag explain $r;

    my $pid = $gw->{pid};
    my $status = wait_exit($pid, 5);
    $gw->{pid} = undef;
    is($status, 0, 'exit 0');
    cmp_ok(time - $t0, '<', 2, 'it left once the requests were done');
    waitpid($load, 0);
    is_deeply(read_counts($out), { 200 => 40 }, 'all 40 accepted requests got 200');
    like($gw->log_text, qr/conflux: stopped/, 'logged');
};

subtest 'SIGINT does the same' => sub {
    my ($yaml) = conf('');
    my $gw = spawn_conflux($yaml);
    my $status = do { $gw->signal('INT'); wait_exit($gw->{pid}, 5) };
    $gw->{pid} = undef;
    is($status, 0, 'exit 0');
};

subtest 'shutdown_timeout bounds the wait' => sub {
    my ($yaml) = conf('shutdown_timeout: 500ms');
    my $gw = spawn_conflux($yaml);
    http_request('POST', $mock->url('/__mock/reset'));
    my ($load, $out) = background_load(3, $gw->url('/hang'));
    my $deadline = time + 5;
    sleep 0.02 while mock_total() < 3 && time < $deadline;
    my $t0 = time;
    $gw->signal('TERM');
    my $status = wait_exit($gw->{pid}, 5);
    my $took = time - $t0;
    $gw->{pid} = undef;
    is($status, 0, 'exit 0');
    cmp_ok($took, '>=', 0.4, sprintf('waited for the requests (%.2fs)', $took));
    cmp_ok($took, '<', 1.5, 'but not past shutdown_timeout');
    like($gw->log_text, qr/shutdown_timeout passed with 3 requests in flight/, 'says what it abandoned');
    waitpid($load, 0);
};

done_testing;
