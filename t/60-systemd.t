# systemd/conflux.service: systemd accepts it, its commands work on the built binary, and its sandbox scores an
# exposure of 2.0 or lower in `systemd-analyze security`.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Test::More;

my $root = "$FindBin::Bin/..";
my $unit_src = "$root/systemd/conflux.service";
my $conflux = bindir() . '/conflux';
plan skip_all => "$conflux is not built" unless -x $conflux;
my ($analyze) = grep { -x } map { "$_/systemd-analyze" } split /:/, $ENV{PATH};
plan skip_all => 'systemd-analyze is not installed (Debian package "systemd")' unless $analyze;

my $dir = tmpdir();

# Runs a command; returns (exit code, or -1 when a signal ended it; stdout; stderr). Bounded by 20 s.
sub run {
    my $r = run_cmd([@_], timeout => 20);
    return ($r->{code} // -1, $r->{out}, $r->{err});
}

my $unit = slurp($unit_src);
my $sample = "$root/config/conflux.yaml";

# The unit's [Service] settings as name => [values] (a setting may repeat).
sub settings {
    my %s;
    for (split /\n/, $_[0]) {
        next if /^\s*(#|;|\[|$)/;
        my ($k, $v) = /^(\w+)=(.*)$/ or next;
        push @{ $s{$k} }, $v;
    }
    return \%s;
}

# The unit with its Debian paths pointed at this build: the binary that was built and the sample config.
(my $local = $unit) =~ s{/usr/bin/conflux}{$conflux}g;
$local =~ s{/etc/conflux/conflux\.yaml}{$sample}g;
my $local_unit = write_file("$dir/conflux.service", $local);

subtest 'the unit: notify, config checked before start and reload, unprivileged, hardened' => sub {
    my $s = settings($unit);
    is_deeply($s->{Type}, ['notify'], 'Type=notify');
    is_deeply($s->{ExecStartPre}, ['/usr/bin/conflux -t -c /etc/conflux/conflux.yaml'], 'the config is checked before start');
    is_deeply($s->{ExecStart}, ['/usr/bin/conflux -c /etc/conflux/conflux.yaml'], 'ExecStart');
    is_deeply($s->{ExecReload}, ['/usr/bin/conflux -t -c /etc/conflux/conflux.yaml', '/bin/kill -HUP $MAINPID'],
        'reload checks the file, then sends SIGHUP');
    is_deeply($s->{DynamicUser}, ['yes'], 'runs as an unprivileged dynamic user');
    is_deeply($s->{LogsDirectory}, ['conflux'], '/var/log/conflux is made for the access log');
    is_deeply($s->{CapabilityBoundingSet}, [''], 'no capabilities');
    ok(!exists $s->{AmbientCapabilities} || "@{$s->{AmbientCapabilities}}" eq '', 'none added back');
    is_deeply($s->{LimitNOFILE}, ['65536'], 'LimitNOFILE');
    is_deeply($s->{Restart}, ['on-failure'], 'Restart=on-failure');
    ok(!exists $s->{IPAddressDeny}, 'no IPAddressDeny: the gateway must reach its backends');
};

subtest 'systemd-analyze verify accepts it, without a warning' => sub {
    my ($rc, $out, $err) = run($analyze, 'verify', $local_unit);
    is($rc, 0, 'exit 0');
    is($err, '', 'nothing on stderr') or diag($err);

    # The check can fail: the same unit with a misspelt setting draws a warning.
    (my $typo = $local) =~ s/^ProtectSystem=/ProtectSytem=/m;
    mkdir "$dir/typo";
    my $bad = write_file("$dir/typo/conflux.service", $typo);
    ($rc, $out, $err) = run($analyze, 'verify', $bad);
    like($err, qr/Unknown key 'ProtectSytem'/, 'a misspelt setting is reported');
};

subtest 'its ExecStartPre and ExecReload check pass on the sample and refuse a bad file' => sub {
    my ($pre) = @{ settings($local)->{ExecStartPre} };
    my ($rc, $out, $err) = run(split / /, $pre);
    is($rc, 0, "$pre: exit 0") or diag($err);
    my $broken = write_file("$dir/broken.yaml", "listen:\n  - port: 8080\nroutes: []\nlisten_typo: 1\n");
    ($rc, $out, $err) = run(split(/ /, $pre =~ s/\Q$sample\E/$broken/r));
    is($rc, 1, 'a bad file: exit 1, so systemd does not start (or reload) the service');
    like($err, qr/^\Q$broken\E:\d+:\d+: /, 'the error names the file, line and column');
};

subtest 'systemd-analyze security: exposure 2.0 or lower' => sub {
    my ($rc, $help) = run($analyze, 'security', '--help');
    plan skip_all => "this systemd-analyze has no security --offline (systemd >= 250 has)" unless $help =~ /--offline/;
    my ($out, $err);
    ($rc, $out, $err) = run($analyze, 'security', '--offline=true', $local_unit);
    is($rc, 0, 'exit 0') or diag($err);
    my ($score) = $out =~ /Overall exposure level for conflux\.service: (\d+\.\d+)/;
    ok(defined $score, 'an overall exposure level is printed') or diag($out);
    cmp_ok($score // 99, '<=', 2.0, "exposure $score <= 2.0");
    note("systemd-analyze security --offline=true systemd/conflux.service: exposure $score") if defined $score;
    # the threshold is in tenths; --threshold=20 is what a CI gate would run
    ($rc) = run($analyze, 'security', '--offline=true', '--threshold=20', $local_unit);
    is($rc, 0, '--threshold=20 passes');

    # The measure can fail: the same service without its sandbox scores far above 2.0.
    my $bare = join '', grep { !/^(DynamicUser|Protect|Private|Restrict|Capability|Ambient|NoNew|Secure|System|Memory|Lock|UMask|RemoveIPC|DevicePolicy|ProcSubset)/ }
        split /^/, $local;
    mkdir "$dir/bare";
    my $bare_unit = write_file("$dir/bare/conflux.service", $bare);
    ($rc, $out) = run($analyze, 'security', '--offline=true', $bare_unit);
    my ($bare_score) = $out =~ /Overall exposure level for conflux\.service: (\d+\.\d+)/;
    cmp_ok($bare_score // 0, '>', 5.0, "without the hardening lines the exposure is above 5 (" . ($bare_score // "none") . ")");
};

done_testing();
