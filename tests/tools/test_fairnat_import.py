"""tools/fairnat-import: FairNAT's fairnat.config turned into a fairgate config.

The samples in data/ follow the FairNAT README's examples; each test states the exact JSON the
mapping must give and the stderr note every setting without an equivalent must get.
"""
import copy
import json
import os
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOL = os.path.join(ROOT, "tools", "fairnat-import")
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
FAIRGATE = os.path.join(ROOT, "build", "fairgate")
with open(os.path.join(ROOT, "conf", "lab.json")) as lab_file:
    LAB = json.load(lab_file)



def run_import(conf, *args):
    return subprocess.run([TOOL, str(conf), *args], capture_output=True, text=True, timeout=30)


def imported(conf, *args):
    """(config, stderr lines) of a run that must succeed."""
    result = run_import(conf, *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr.splitlines()


def sample(name):
    return os.path.join(DATA, name)


def write(tmp_path, text, name="fairnat.config"):
    path = tmp_path / name
    path.write_text(text)
    return path


def write_base(tmp_path, base, name="base.json"):
    path = tmp_path / name
    path.write_text(json.dumps(base))
    return path


def single_wan_base():
    """conf/lab.json with its first WAN only: FairNAT knows one internet link, and fairgate wants
    rates on every WAN port once it shapes."""
    base = copy.deepcopy(LAB)
    base["ports"] = [port for port in base["ports"] if port["name"] != "wan1"]
    base.pop("wan", None)  # one WAN: nothing to fail over to
    return base


def port(config, name):
    return next(p for p in config["ports"] if p["name"] == name)


# --- the README example: every mapping with its exact value ---------------------------------

def test_readme_example_sets_the_link_rates_and_framing_on_the_base_ports():
    config, _ = imported(sample("readme-example.conf"))
    assert port(config, "lan0") == {**LAB["ports"][0], "rate": "100mbit"}
    assert port(config, "wan0") == {**LAB["ports"][1], "rate_down": "16mbit", "rate_up": "2000kbit",
                                    "overhead": 8, "mpu": 64}
    assert port(config, "wan1") == LAB["ports"][2]


def test_readme_example_qos():
    config, _ = imported(sample("readme-example.conf"))
    assert config["qos"] == {**LAB.get("qos", {}), "download": True, "upload": True, "rate_sub_percent": 7, "rate_local_percent": 3,
                             "borrow": True, "user_ceil_down": "8mbit", "user_ceil_up": "1500kbit"}


def test_readme_example_subscribers_expand_in_the_lan_ports_prefix():
    config, _ = imported(sample("readme-example.conf"))
    assert config["subscribers"] == [
        {"name": "user3", "addresses": ["10.10.0.3"]},
        {"name": "user4", "addresses": ["10.10.0.4"]},
        {"name": "user7", "addresses": ["10.10.0.7", "10.10.0.9", "10.10.0.12"]},
        {"name": "user42", "addresses": ["10.10.0.42"], "down": {"ceil": "300kbit"}, "up": {"ceil": "50kbit"}},
    ]


def test_readme_example_nat():
    config, _ = imported(sample("readme-example.conf"))
    expected = dict(LAB["nat"])
    expected.update({
        "mss_clamp": "mtu",
        "ttl_set": 64,
        "port_forwards": [
            {"protocol": "both", "external": 5000, "internal": "10.10.0.3", "internal_port": 5000},
            # fairgate writes a range "first-last", and its internal side must be as long.
            {"protocol": "both", "external": "6000-6100", "internal": "10.10.0.9", "internal_port": "6000-6100"},
            {"protocol": "both", "external": "6300-6400", "internal": "10.10.0.9", "internal_port": "6300-6400"},
            {"protocol": "both", "external": 7000, "internal": "10.10.0.42", "internal_port": 7000},
        ],
    })
    assert config["nat"] == expected


def test_everything_else_comes_from_the_base_and_the_output_is_indented_json():
    result = run_import(sample("readme-example.conf"))
    config = json.loads(result.stdout)
    for section in ("name", "pipeline", "eal", "dataplane", "control", "neighbors"):
        assert config[section] == LAB[section]
    # The README's example leaves IPP2P off, so the base's p2p section goes.
    assert list(config)[:len(LAB) - 1] == [section for section in LAB if section != "p2p"]
    assert result.stdout == json.dumps(config, indent=2) + "\n"


def test_readme_example_notes():
    _, notes = imported(sample("readme-example.conf"))
    assert notes == [
        "fairnat-import: DEV_LAN=eth1: kept the base config's lan port lan0; its device is set in ports[].device",
        "fairnat-import: DEV_NET=ppp0: kept the base config's wan port wan0; its device is set in ports[].device",
        "fairnat-import: RATE_DOWN=16mbit: FairNAT shapes one internet link: written on wan0 only, "
        "wan1 needs a rate_down of its own",
        "fairnat-import: RATE_UP=2000: FairNAT shapes one internet link: written on wan0 only, "
        "wan1 needs a rate_up of its own",
        "fairnat-import: HTB_OVERHEAD=8: written as wan0's overhead; fairgate adds it to the Ethernet frame "
        "and it replaces the default ethernet framing (24 bytes)",
        'fairnat-import: USERS="3 4 7:9:12 42@300|50": fairgate translates for every host on the LAN, '
        "not only for the listed users",
    ]


def test_one_wan_base_gets_no_note_about_other_links(tmp_path):
    _, notes = imported(sample("readme-example.conf"), "--base", str(write_base(tmp_path, single_wan_base())))
    assert not [note for note in notes if "one internet link" in note]


@pytest.mark.skipif(not os.access(FAIRGATE, os.X_OK), reason="build/fairgate is not built")
@pytest.mark.parametrize("conf", ["readme-example.conf", "features-subset.conf", "fairnat-0.79-style.conf"])
def test_fairgate_accepts_the_imported_config(tmp_path, conf):
    config, _ = imported(sample(conf), "--base", str(write_base(tmp_path, single_wan_base())))
    out = write_base(tmp_path, config, "imported.json")
    check = subprocess.run([FAIRGATE, "--config", str(out), "--check"], capture_output=True, text=True,
                           timeout=60)
    assert check.returncode == 0, check.stderr


# --- rates --------------------------------------------------------------------------------

@pytest.mark.parametrize("text, written, bps", [
    ("2000", "2000kbit", 2_000_000),        # a bare number is kbit/s
    ("02000", "2000kbit", 2_000_000),
    ("2mbit", "2mbit", 2_000_000),          # the user's unit is kept
    ("1.5mbit", "1.5mbit", 1_500_000),
    ("1.50MBit", "1.5mbit", 1_500_000),     # tc reads units in any case; fairgate wants lower case
    (".5mbit", "0.5mbit", 500_000),
    ("0.5gbit", "0.5gbit", 500_000_000),
    ("8000bit", "8000bit", 8000),
    ("100kbps", "100kbps", 800_000),        # bytes per second
    ("2mbps", "2mbps", 16_000_000),
    ("1000bps", "1000bps", 8000),
])
def test_rate_forms(fairnat_import, text, written, bps):
    assert fairnat_import.canonical_rate(text) == (written, bps)


@pytest.mark.parametrize("text", ["fast", "2 mbit", "1e3", "2mb", "-5", "5", "999bps", "401gbit", ""])
def test_rates_fairgate_cannot_take(fairnat_import, text):
    with pytest.raises(fairnat_import.BadValue):
        fairnat_import.canonical_rate(text)


# --- FEATURES -----------------------------------------------------------------------------

def test_without_features_every_feature_is_on_and_unset_settings_keep_the_base(tmp_path):
    config, notes = imported(write(tmp_path, 'USERS="3"\n'))
    assert config["qos"] == {**LAB.get("qos", {}), "download": True, "upload": True, "rate_sub_percent": 5, "rate_local_percent": 5,
                             "borrow": True}
    assert config["subscribers"] == [{"name": "user3", "addresses": ["10.10.0.3"]}]
    assert config["nat"] == LAB["nat"]  # PORTS, MSS_CLAMP, TTL_SET unset
    assert config["ports"] == LAB["ports"]
    assert notes == ['fairnat-import: USERS=3: fairgate translates for every host on the LAN, '
                     'not only for the listed users']


def test_features_subset():
    config, notes = imported(sample("features-subset.conf"))
    assert config["qos"] == {**LAB.get("qos", {}), "download": False, "upload": True, "rate_sub_percent": 5, "rate_local_percent": 5,
                             "borrow": False}
    assert config["subscribers"] == [
        {"name": "user5", "addresses": ["10.10.0.5"], "down": {"ceil": "1mbit"}},
        {"name": "user17", "addresses": ["10.10.0.17"], "up": {"ceil": "50kbit"}},
        {"name": "user20", "addresses": ["10.10.0.20", "10.10.0.21"]},
    ]
    # No FORWARD: the base's forwards go too. MSS_CLAMP=0 and TTL_SET=0 write nothing.
    assert config["nat"] == {key: value for key, value in LAB["nat"].items() if key != "port_forwards"}
    # IPP2P on for every protocol, UDP too, nothing dropped.
    assert config["p2p"] == {**LAB["p2p"], "protocols": "--ipp2p --apple --bit", "udp": True,
                             "policy": {"action": "allow"}}
    # HTB_MPU=0 and HTB_OVERHEAD=0 write nothing either.
    assert port(config, "wan0") == {**LAB["ports"][1], "rate_down": "8mbit", "rate_up": "1mbit"}
    features = 'FEATURES="PROC MODULES RESET NAT QOS_UP TOS"'
    assert notes == [
        f"fairnat-import: {features}: PROC: not applicable: fairgate forwards in userspace and changes nothing "
        "in /proc",
        f"fairnat-import: {features}: MODULES: not applicable: fairgate loads no kernel modules",
        f"fairnat-import: {features}: RESET: not applicable: fairgate neither uses nor resets iptables rules",
        f"fairnat-import: {features}: TOS: fairgate classifies traffic without rewriting the TOS field",
        "fairnat-import: RATE_DOWN=8mbit: FairNAT shapes one internet link: written on wan0 only, "
        "wan1 needs a rate_down of its own",
        "fairnat-import: RATE_UP=1mbit: FairNAT shapes one internet link: written on wan0 only, "
        "wan1 needs a rate_up of its own",
        "fairnat-import: CLASS_MODE=wonder: no equivalent (fairgate has one class structure: interactive, normal, "
        "bulk, p2p)",
        'fairnat-import: USERS="5@1mbit 17@|50 20:21": fairgate translates for every host on the LAN, '
        "not only for the listed users",
        f"fairnat-import: {features}: no FORWARD: no port forwards (PORTS ignored, the base's removed)",
        "fairnat-import: FAIRNAT_PREFIX=FAIRNAT2: not applicable: fairgate creates no iptables chains",
        "fairnat-import: BIN_TC=/usr/local/sbin/tc-htb: not applicable: fairgate runs no external programs",
        "fairnat-import: BIN_IPT=/sbin/iptables: not applicable: fairgate runs no external programs",
        "fairnat-import: WONDER_LIMIT=3: unknown FairNAT setting",
    ]


def test_no_features_at_all(tmp_path):
    config, notes = imported(write(tmp_path, 'FEATURES=""\nUSERS="3 4"\nPORTS="3 80"\n'))
    assert config["qos"]["download"] is False and config["qos"]["upload"] is False
    # fairgate refuses subscribers it does not shape.
    assert "subscribers" not in config
    assert "port_forwards" not in config["nat"]
    assert config["pipeline"] == "gateway"
    assert notes == [
        'fairnat-import: USERS="3 4": not written: with QOS_DOWN and QOS_UP off there is no one to shape, '
        "and fairgate translates for every host on the LAN",
        'fairnat-import: FEATURES="": no NAT: no equivalent, fairgate\'s gateway pipeline always translates '
        '(only the "forward" pipeline does not); pipeline kept as gateway',
        "fairnat-import: FEATURES=\"\": no FORWARD: no port forwards (PORTS ignored, the base's removed)",
    ]


def test_unknown_feature_is_noted(tmp_path):
    config, notes = imported(write(tmp_path, 'FEATURES="NAT FORWARD QOS_DOWN QOS_UP TURBO"\n'))
    assert config["qos"]["download"] is True
    assert notes == ['fairnat-import: FEATURES="NAT FORWARD QOS_DOWN QOS_UP TURBO": TURBO: unknown FairNAT feature']


def test_empty_ports_removes_the_forwards(tmp_path):
    config, _ = imported(write(tmp_path, 'PORTS=""\n'))
    assert config["nat"]["port_forwards"] == []


# --- older FairNAT and shell syntax ---------------------------------------------------------

def test_fairnat_079_style_with_older_names():
    config, notes = imported(sample("fairnat-0.79-style.conf"))
    assert config["qos"] == {**LAB.get("qos", {}), "download": True, "upload": True, "rate_sub_percent": 5, "rate_local_percent": 5,
                             "borrow": True, "user_ceil_down": "768kbit"}  # CEIL_USER_UP=0: no ceiling
    assert config["nat"]["mss_clamp"] == 1400
    assert config["nat"]["port_forwards"] == [
        {"protocol": "both", "external": "4000-6999", "internal": "10.10.0.2", "internal_port": "4000-6999"},
        {"protocol": "both", "external": "2000-3999", "internal": "10.10.0.183", "internal_port": "2000-3999"},
    ]
    assert config["subscribers"][2] == {"name": "user6", "addresses": ["10.10.0.6", "10.10.0.23", "10.10.0.25"]}
    assert config["subscribers"][3] == {"name": "user183", "addresses": ["10.10.0.183"],
                                        "down": {"ceil": "1mbit"}, "up": {"ceil": "100kbit"}}
    assert port(config, "lan0")["rate"] == "5000kbit"
    assert "fairnat-import: LINE=768: unknown FairNAT setting" in notes
    assert 'fairnat-import: USERS="2 5 6:23:25 183@1mbit|100kbit": fairgate translates for every host on the ' \
           "LAN, not only for the listed users" in notes


@pytest.mark.parametrize("text", [
    "RATE_UP=3mbit\n",
    "export RATE_UP=3mbit\n",
    "  RATE_UP=3mbit   # indented, with a comment\n",
    'RATE_UP="3mbit"# a comment right after the quote\n',
    "RATE_UP='3mbit'\n",
    "RATE_UP=3\"mb\"'it'\n",
    'LINE=3\nRATE_UP="${LINE}mbit"\n',
    "LINE=3mbit\nRATE_UP=$LINE\n",
    "RATE_UP=\\\n3mbit\n",
    "RATE_UP=1mbit\nRATE_UP=3mbit\n",  # the last assignment wins, as in the shell
])
def test_shell_assignments(tmp_path, text):
    config, _ = imported(write(tmp_path, text))
    assert port(config, "wan0")["rate_up"] == "3mbit"


@pytest.mark.parametrize("value, clamp", [("1", "mtu"), ('"--clamp-mss-to-pmtu"', "mtu"),
                                          ('"--set-mss 1400"', 1400)])
def test_mss_clamp(tmp_path, value, clamp):
    config, _ = imported(write(tmp_path, f"MSS_CLAMP={value}\n"), "--base",
                         str(write_base(tmp_path, {**LAB, "nat": {}})))
    assert config["nat"] == {"mss_clamp": clamp}


def test_off_hacks_write_nothing(tmp_path):
    base = {key: value for key, value in LAB.items() if key != "nat"}
    config, _ = imported(write(tmp_path, "MSS_CLAMP=0\nTTL_SET=0\nHTB_MPU=0\nHTB_OVERHEAD=0\nUSER_CEIL_UP=0\n"),
                         "--base", str(write_base(tmp_path, base)))
    assert "nat" not in config
    assert config["ports"] == LAB["ports"]
    assert "user_ceil_up" not in config["qos"]


def test_syntax_errors_name_their_lines():
    result = run_import(sample("broken.conf"))
    path = sample("broken.conf")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"fairnat-import: error: {path}:2: more than one word after RATE_UP= (quote the value)",
        f"fairnat-import: error: {path}:3: command substitution `...` is not supported",
        f"fairnat-import: error: {path}:4: unquoted '|' (quote the value)",
        f"fairnat-import: error: {path}:5: not a NAME=value assignment: echo hello",
        f"fairnat-import: error: {path}:7: unterminated double quote",
    ]


@pytest.mark.parametrize("text, message", [
    ("RATE_UP=$(cat /etc/rate)\n", "command substitution $(...) is not supported"),
    ("RATE_UP=$LINE\n", "$LINE is not assigned earlier in the file"),
    ("RATE_UP='2mbit\n", "unterminated single quote"),
    ("RATE_UP=2mbit;\n", "unquoted ';' (quote the value)"),
    ("CEIL_USER_UP=100\nUSER_CEIL_UP=200\n", "USER_CEIL_UP and CEIL_USER_UP (line 1) are the same setting"),
])
def test_unreadable_lines(tmp_path, text, message):
    conf = write(tmp_path, text)
    result = run_import(conf)
    assert result.returncode == 2
    assert f"fairnat-import: error: {conf}:" in result.stderr and message in result.stderr


# --- --lan and --base -----------------------------------------------------------------------

def test_lan_option_sets_where_users_expand(tmp_path):
    config, notes = imported(write(tmp_path, 'USERS="3 7:9"\nPORTS="3 5000"\n'), "--lan", "192.168.100.0/24")
    assert config["subscribers"] == [{"name": "user3", "addresses": ["192.168.100.3"]},
                                     {"name": "user7", "addresses": ["192.168.100.7", "192.168.100.9"]}]
    assert config["nat"]["port_forwards"][0]["internal"] == "192.168.100.3"
    assert notes[0] == ("fairnat-import: --lan 192.168.100.0/24: no LAN port of the base config covers it; "
                        "fairgate refuses subscribers and forwards outside its LAN ports")


def test_default_lan_is_the_base_lan_ports_address(tmp_path):
    base = copy.deepcopy(LAB)
    base["ports"][0]["address"] = "192.168.100.42/24"
    config, notes = imported(write(tmp_path, 'USERS="183"\n'), "--base", str(write_base(tmp_path, base)))
    assert config["subscribers"] == [{"name": "user183", "addresses": ["192.168.100.183"]}]
    assert not [note for note in notes if "--lan" in note]


def test_base_option_keeps_fairgate_only_settings(tmp_path):
    base = single_wan_base()
    base["qos"] = {"download": False, "user_ceil_up": "1mbit"}
    base["subscribers"] = [{"name": "old", "addresses": ["10.10.0.200"]}]
    base["ports"][1]["overhead"] = "pppoe"
    config, _ = imported(write(tmp_path, 'USERS="3"\nHTB_OVERHEAD=0\n'), "--base", str(write_base(tmp_path, base)))
    assert config["qos"] == {"download": True, "user_ceil_up": "1mbit", "upload": True,
                             "rate_sub_percent": 5, "rate_local_percent": 5, "borrow": True}
    assert config["subscribers"] == [{"name": "user3", "addresses": ["10.10.0.3"]}]
    assert port(config, "wan0")["overhead"] == "pppoe"
    assert len(config["ports"]) == 2


@pytest.mark.parametrize("args, message", [
    (["--base", "/nonexistent/base.json"], "--base /nonexistent/base.json"),
    (["--lan", "not-a-prefix"], "--lan"),
])
def test_bad_options(tmp_path, args, message):
    result = run_import(write(tmp_path, 'USERS="3"\n'), *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_base_without_a_wan_port(tmp_path):
    base = {**LAB, "ports": [LAB["ports"][0]]}
    result = run_import(write(tmp_path, "RATE_UP=1mbit\n"), "--base", str(write_base(tmp_path, base)))
    assert result.returncode == 2
    assert 'role "wan"' in result.stderr


def test_missing_fairnat_file():
    result = run_import("/nonexistent/fairnat.config")
    assert result.returncode == 2
    assert "cannot read /nonexistent/fairnat.config" in result.stderr


# --- values fairgate cannot take: exit 2, naming the variable -------------------------------

@pytest.mark.parametrize("text, variable, reason", [
    ("RATE_UP=fast\n", "RATE_UP", "is not a rate"),
    ("RATE_DOWN=5\n", "RATE_DOWN", "outside the 8kbit..400gbit"),
    ("RATE_LAN=100mb\n", "RATE_LAN", "is not a rate"),
    ("USER_CEIL_DOWN=lots\n", "USER_CEIL_DOWN", "is not a rate"),
    ("USER_CEIL_UP=1e3\n", "USER_CEIL_UP", "is not a rate"),
    ("RATE_SUB_PERCENT=60\n", "RATE_SUB_PERCENT", "from 0 to 50"),
    ("RATE_LOCAL_PERCENT=abc\n", "RATE_LOCAL_PERCENT", "from 0 to 50"),
    ("RATE_SUB_PERCENT=50\nRATE_LOCAL_PERCENT=50\n", "RATE_LOCAL_PERCENT", "leave nothing for the users"),
    ("BORROW=yes\n", "BORROW", "from 0 to 1"),
    ('USERS="0"\n', "USERS", 'user "0" in "0" is not a number from 1 to 254'),
    ('USERS="3 255"\n', "USERS", 'user "255" in "255" is not a number from 1 to 254'),
    ('USERS="3 x:4"\n', "USERS", 'user "x" in "x:4"'),
    ('USERS="3:4 7 4@300"\n', "USERS", '10.10.0.4 is listed twice ("3:4" and "4@300")'),
    ('USERS="42@fast"\n', "USERS", '"42@fast": down ceil "fast" is not a rate'),
    ('USERS="42@300|slow"\n', "USERS", '"42@300|slow": up ceil "slow" is not a rate'),
    ('USERS="42|50"\n', "USERS", '"42|50" is not user[:user...][@down_ceil][|up_ceil]'),
    ('USERS="1"\n', "USERS", "10.10.0.1 is the gateway's own LAN address"),
    ('PORTS="3 5000:5100 4 5050"\n', "PORTS", "5050 (user 4) overlaps 5000:5100 (user 3)"),
    ('PORTS="3 80 4 80"\n', "PORTS", "80 (user 4) overlaps 80 (user 3)"),
    ('PORTS="3 5000 9"\n', "PORTS", '"9" has no port'),
    ('PORTS="3 70000"\n', "PORTS", '"70000" is not a port'),
    ('PORTS="3 6100:6000"\n', "PORTS", '"6100:6000" is not a port'),
    ('PORTS="300 80"\n', "PORTS", 'user "300"'),
    ("TTL_SET=300\n", "TTL_SET", "from 1 to 255"),
    ("MSS_CLAMP=2\n", "MSS_CLAMP", "is not 0, 1, --clamp-mss-to-pmtu or --set-mss SIZE"),
    ('MSS_CLAMP="--set-mss 100"\n', "MSS_CLAMP", "from 536 to 9000"),
    ("HTB_MPU=-1\n", "HTB_MPU", "from 0 to 256"),
    ("HTB_OVERHEAD=1000\n", "HTB_OVERHEAD", "from -64 to 256"),
])
def test_bad_values(tmp_path, text, variable, reason):
    result = run_import(write(tmp_path, text))
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    line = text.count("\n")
    assert f"fairnat-import: error: {variable} (line {line}): " in result.stderr
    assert reason in result.stderr


def test_user_outside_the_lan_prefix(tmp_path):
    result = run_import(write(tmp_path, 'USERS="3 200"\n'), "--lan", "10.10.0.128/25")
    assert result.returncode == 2
    assert "fairnat-import: error: USERS (line 1): 10.10.0.3 is not a host address in 10.10.0.128/25 (--lan)" \
           in result.stderr


def test_every_bad_value_is_reported(tmp_path):
    result = run_import(write(tmp_path, "RATE_UP=fast\nBORROW=2\nTTL_SET=0x40\n"))
    assert result.returncode == 2
    assert [line.split(":")[2].strip() for line in result.stderr.splitlines()] == \
           ["RATE_UP (line 1)", "BORROW (line 2)", "TTL_SET (line 3)"]


# --- IPP2P ----------------------------------------------------------------------------------

@pytest.mark.parametrize("settings, p2p", [
    ("IPP2P_ENABLE=1\n", {"protocols": "--ipp2p --apple --bit", "udp": False, "policy": {"action": "allow"}}),
    ('IPP2P_ENABLE=1\nIPP2P_OPTIONS="--edk --bit"\nIPP2P_DROP_ALL=1\n',
     {"protocols": "--edk --bit", "udp": False, "policy": {"action": "drop", "drop_marked": False}}),
    ("IPP2P_ENABLE=1\nIPP2P_UDP=1\nIPP2P_DROP_ALL=1\nIPP2P_DROP_MARKED=1\n",
     {"protocols": "--ipp2p --apple --bit", "udp": True, "policy": {"action": "drop", "drop_marked": True}}),
], ids=["defaults", "drop_all_two_protocols", "drop_marked_with_udp"])
def test_ipp2p_settings_become_the_p2p_section(tmp_path, settings, p2p):
    config, notes = imported(write(tmp_path, 'FEATURES="NAT QOS_DOWN QOS_UP"\n' + settings))
    assert config["p2p"] == {**LAB["p2p"], **p2p}
    assert not [note for note in notes if "IPP2P" in note]


def test_ipp2p_protocols_without_signatures_and_drop_marked_alone_are_noted(tmp_path):
    config, notes = imported(write(tmp_path, 'FEATURES="NAT"\nIPP2P_ENABLE=1\nIPP2P_OPTIONS="--bit --mute"\n'
                                             "IPP2P_DROP_MARKED=1\n"))
    assert config["p2p"]["protocols"] == "--bit"
    assert config["p2p"]["policy"] == {"action": "allow"}
    assert notes[-2:] == [
        'fairnat-import: IPP2P_OPTIONS="--bit --mute": fairgate has no signatures for --mute: left out',
        "fairnat-import: IPP2P_DROP_MARKED=1: applies when the policy changes to drop: at run time "
        "`p2p-policy action=drop drop_marked=true`",
    ]


def test_ipp2p_off_removes_the_section_and_names_what_it_ignores(tmp_path):
    config, notes = imported(write(tmp_path, 'FEATURES="NAT"\nIPP2P_ENABLE=0\nIPP2P_DROP_ALL=1\n'))
    assert "p2p" not in config
    assert notes[-1] == ("fairnat-import: IPP2P_ENABLE=0: P2P recognition off (FairNAT's default): the base's p2p "
                         "section removed (IPP2P_DROP_ALL ignored)")


def test_unknown_ipp2p_option_is_an_error(tmp_path):
    result = run_import(write(tmp_path, 'IPP2P_ENABLE=1\nIPP2P_OPTIONS="--bit --napster"\n'))
    assert result.returncode == 2
    assert 'error: IPP2P_OPTIONS (line 2): unknown IPP2P option "--napster"' in result.stderr
