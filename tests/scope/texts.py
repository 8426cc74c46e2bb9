"""A small multi-topic text with names, numbers and dates (about 660 model tokens)."""

from __future__ import annotations

REPORT = """\
The harbour town of Kelvidge was founded in 1312 by fishermen from the northern coast. For \
centuries its economy depended on herring, which was salted in long sheds along the quay and \
shipped south in barrels. The old salting sheds still stand, although most of them now house \
cafés and small galleries. Visitors often remark that the smell of brine never quite left the \
timber, even after seven hundred years.

In the spring of 1998 the town council, led by mayor Agnes Tillotson, approved a plan to \
rebuild the breakwater. The old wall had been damaged by a storm on 14 February 1996, when \
waves of more than 9 metres flooded the lower streets. The new breakwater cost 42 million \
euros and took four years to build. Engineers from the firm Marlow & Finch used granite \
blocks quarried at Penhallow, each weighing about 12 tonnes.

The breakwater changed the harbour in ways nobody had predicted. Sand that used to wash out \
to sea now settles inside the wall, and the channel must be dredged twice a year. Fishermen \
complain that the calmer water has driven the herring away, while sailing clubs say the \
harbour has never been safer. A study by the University of Strathmore in 2011 found that \
the catch had fallen by 38 percent since the wall was finished.

Tourism filled much of the gap. The annual Lantern Festival, first held in 2003, now draws \
about 65,000 visitors every August. During the festival, boats decorated with paper lanterns \
sail in a slow procession from the lighthouse to the old quay. Local bakers sell a spiced \
bread called brinecake, and the brass band of Kelvidge plays on the harbour steps until \
midnight.

Not everyone welcomes the crowds. Residents of the lower town have formed an association \
that campaigns for limits on short-term rentals. Its chair, a retired teacher named Oswin \
Pardoe, argues that young families can no longer afford to live near the water. In 2019 the \
council capped new holiday lets at 150 per year, a compromise that pleased nobody entirely.

The lighthouse at the end of the breakwater is the town's best known landmark. It was \
designed by the engineer Hester Voight and first lit on 2 November 1887. Its lamp can be \
seen from 22 nautical miles away on a clear night. The last keeper, Thomas Grell, retired in \
1979, when the light was automated, and he later wrote a memoir about his thirty years on \
the rock.

Scientists have recently taken an interest in the waters beyond the wall. In 2021 a team \
from the Marine Institute recorded a colony of seahorses living among the granite blocks, \
the first sighting of the species so far north. The team, led by Dr. Ruth Abernethy, \
counted 214 individuals in a single survey. They believe the sheltered water and warmer \
summers allowed the colony to establish itself, and they have asked the council to protect \
the site.
"""

QUESTION = "Who led the team that found the seahorses?"
EXPECTED = "Abernethy"
