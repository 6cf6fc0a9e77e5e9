"""Every prompt text the generator sends, in one place, plus :data:`PROMPT_VERSION`.

``PROMPT_VERSION`` is part of every LLM cache key and of every generated
conversation's metadata: change it whenever a text below changes, so that cached
replies made with the old wording are not replayed for the new one.

The end prompt and phrase are the paper's (RecLLMSim §3.4), with a Chinese form for
``--language zh``; when a reply ends the conversation is the goodbye rule of ``goodbye.py``.
The other texts are this project's own.

Example:
    >>> says_goodbye("Great, that's all I need. Thank you, goodbye!")
    True
    >>> says_goodbye("Thank you! One more question.")
    False
"""

from __future__ import annotations

from .goodbye import END_PHRASES, END_PROMPTS, closing_phrase, end_prompt, says_goodbye  # noqa: F401

PROMPT_VERSION = "recllmsim-gen-1"

END_PHRASE = END_PHRASES["en"]
END_PROMPT = END_PROMPTS["en"]


# -- conversations -------------------------------------------------------------------------------

ASSISTANT_SYSTEM = "You are a helpful assistant."

SIMULATOR_SYSTEM = """\
You are taking part in a role-play. You play a USER who is chatting with an AI assistant; \
the assistant's messages will be sent to you, and you answer as the user.

Who you are (your profile):
{profile}

Your situation and goal:
{scenario}

How to play the user:
- Speak only as this user, in the first person and in {language}. Never act as the assistant: \
do not answer your own questions or write plans for the assistant.
- Let your profile shape what you ask for, accept and reject, as a real person with these \
likes and dislikes would. Reveal your needs step by step rather than all at once.
- React to the assistant's suggestions: ask follow-up questions, point out what does not fit \
you and ask for changes until the plan works for you.
- Keep each message short and natural, like a chat message (one to four sentences).
- Never mention that you are role-playing, that you were given a profile, or that you are an AI."""

SIMULATOR_KICKOFF = "Begin the conversation now: write your first message to the assistant."


def simulator_setup(profile_text: str, scenario_text: str, language: str = "English") -> str:
    """The simulator's system prompt for one profile and one scenario."""
    return SIMULATOR_SYSTEM.format(profile=profile_text, scenario=scenario_text, language=language)


def with_end_prompt(assistant_reply: str, language: str = "en") -> str:
    """An assistant reply as the simulator sees it: with the (localised) end prompt appended."""
    return f"{assistant_reply}\n\n{end_prompt(language)}"


# -- profiles ------------------------------------------------------------------------------------

PROFILE_REQUIREMENTS = """\
Each profile describes one fictional adult with these nine fields: gender, age, personality, \
occupation, daily interests and hobbies, travel habits, dining preferences, spending habits, \
and other aspects.
- gender, age and occupation are single values; the other six fields are lists of two to \
five short phrases.
- Give likes AND dislikes: in most list fields include at least one dislike, written like \
"dislikes crowded tourist spots".
- Make the details concrete and consistent with one another (age, job, budget, habits).
- Make every profile clearly different from all the others: vary gender, age (18 to 80), \
occupation, region of life, income level and tastes. Never repeat a profile."""

PROFILE_EXAMPLES = """\
Two examples of well-made profiles:

1. Gender: Female
2. Age: 34
3. Personality: Organised; warm with friends; impatient with small talk
4. Occupation: Hospital pharmacist
5. Daily Interests and Hobbies: Trail running; board games; dislikes watching television
6. Travel Habits: Short trips to mountain towns by train; plans every day in advance; dislikes long flights
7. Dining Preferences: Vegetarian; loves spicy Sichuan dishes; dislikes sweet desserts
8. Spending Habits: Saves a fixed share of her salary; pays more for quality sports gear
9. Other Aspects: Lives with a cat; learning German in the evenings

1. Gender: Male
2. Age: 67
3. Personality: Easy-going; talkative; stubborn about routines
4. Occupation: Retired bus driver
5. Daily Interests and Hobbies: Gardening; Chinese chess in the park; dislikes smartphone games
6. Travel Habits: Group tours with old colleagues; prefers coaches to planes; dislikes hot weather
7. Dining Preferences: Home-style Cantonese food; light soups; dislikes raw fish
8. Spending Habits: Careful with money; generous with his grandchildren
9. Other Aspects: Mild knee pain limits long walks; cares for his grandson on weekends"""

# The examples sit in the system prompt, so they stay in context when old batches are dropped.
PROFILE_SYSTEM = (
    "You write realistic, diverse user profiles for a study of recommendation conversations.\n\n"
    + PROFILE_REQUIREMENTS
    + "\n\n"
    + PROFILE_EXAMPLES
)

PROFILE_FIRST = "Write {n} new profiles that differ from the examples."

# The paper's fix for the model forgetting the rules in a long context: every
# continuation restates them in short form.
PROFILE_CONTINUE = """\
Write {n} more profiles. Remember the requirements:
- nine fields; gender, age and occupation single values; the rest lists of two to five phrases;
- likes AND dislikes in most list fields;
- each profile clearly different from every earlier one.{avoid}"""

PROFILE_AVOID = "\nThese occupations are already taken, choose others: {occupations}."


# -- filtering -----------------------------------------------------------------------------------

FILTER_SYSTEM = """\
You check generated conversations between a simulated USER and an AI ASSISTANT. \
The user was asked to role-play the profile and situation below; the assistant is a plain \
helpful assistant.

Answer whether:
- user_stays_user: every user message is written by a user (it never answers like an \
assistant, never writes plans or lists of options for the other side);
- assistant_stays_assistant: every assistant message is a helpful assistant reply;
- on_task: the conversation is about the given situation;
- complete: no message is empty or visibly cut off.
Give a one-sentence reason."""

FILTER_USER = "Profile:\n{profile}\n\nSituation:\n{scenario}\n\nConversation:\n{conversation}"
