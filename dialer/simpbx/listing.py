"""EventList actions: CoreShowChannels, Status, ConfbridgeListRooms, ConfbridgeList.

Quirks copied from 02/07: list items carry no Privilege except Status (``Privilege: Call``);
ActionID is the 2nd line of CoreShowChannel but the last line of Status; StatusComplete also
carries ``Items``; a missing conference is a plain Error without an EventList.
"""

from __future__ import annotations

import time

from .channels import STATE_DESC, Channel
from .core import Core
from .replies import Reply, aid_of, error, list_complete, list_start
from .wire import Action, get


def _duration(ch: Channel) -> int:
    return int(time.monotonic() - ch.created)


def _bridge_id(ch: Channel) -> str:
    return ch.conference.uid if ch.conference is not None else ""


def core_show_channels(core: Core, action: Action) -> Reply:
    aid = get(action, "ActionID")
    items = []
    for ch in core.channels.values():
        secs = _duration(ch)
        items.append(
            [
                ("Event", "CoreShowChannel"),
                *aid_of(aid),
                *ch.snapshot(),
                ("Application", ch.app),
                ("ApplicationData", ch.app_data),
                ("Duration", f"{secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}"),
                ("BridgeId", _bridge_id(ch)),
            ]
        )
    done = list_complete("CoreShowChannelsComplete", aid, len(items))
    return Reply([list_start(aid, "Channels will follow"), *items, done])


def _status_item(ch: Channel, aid: str, names: list[str]) -> list[tuple[str, str]]:
    fmt = "(ulaw)" if ch.tech == "PJSIP" else "(slin)"
    plain = fmt.strip("()")
    item = [("Event", "Status"), ("Privilege", "Call"), *ch.snapshot()]
    item += [("Type", ch.tech), ("DNID", ""), ("EffectiveConnectedLineNum", ch.conn_num)]
    item += [("EffectiveConnectedLineName", ch.conn_name), ("TimeToHangup", "0")]
    item += [("BridgeID", _bridge_id(ch)), ("Application", ch.app), ("Data", ch.app_data)]
    item += [("Nativeformats", fmt), ("Readformat", plain), ("Readtrans", "")]
    item += [("Writeformat", plain), ("Writetrans", ""), ("Callgroup", "0"), ("Pickupgroup", "0")]
    item += [("Seconds", str(_duration(ch)))]
    item += [("Variable", f"{name}={ch.variables.get(name, '')}") for name in names]
    return item + aid_of(aid)


def status(core: Core, action: Action) -> Reply:
    aid = get(action, "ActionID")
    key = get(action, "Channel")
    names = [n.strip() for n in get(action, "Variables").split(",") if n.strip()]
    if key:
        found = core.find(key)
        if found is None:
            return Reply([error(aid, "No such channel")])
        chans = [found]
    else:
        chans = list(core.channels.values())
    items = [_status_item(ch, aid, names) for ch in chans]
    done = list_complete("StatusComplete", aid, len(items), ("Items", str(len(items))))
    return Reply([list_start(aid, "Channel status will follow"), *items, done])


def confbridge_list_rooms(core: Core, action: Action) -> Reply:
    aid = get(action, "ActionID")
    if not core.conferences:
        return Reply([error(aid, "No active conferences.")])
    items = [conf.room_item(aid_of(aid)) for conf in core.conferences.values()]
    done = list_complete("ConfbridgeListRoomsComplete", aid, len(items))
    return Reply([list_start(aid, "Confbridge conferences will follow"), *items, done])


def confbridge_list(core: Core, action: Action) -> Reply:
    aid = get(action, "ActionID")
    name = get(action, "Conference")
    if not name:
        return Reply([error(aid, "No Conference name provided.")])
    conf = core.conferences.get(name)
    if conf is None or not conf.members:
        return Reply([error(aid, "No active conferences.")])
    items = conf.list_items(aid_of(aid))
    done = list_complete("ConfbridgeListComplete", aid, len(items))
    return Reply([list_start(aid, "Confbridge user list will follow"), *items, done])


def state_of(ch: Channel) -> str:
    return STATE_DESC.get(ch.state, "Unknown")
