"""One-time grants that rest on a single fact: 4.4 job standards, 4.5 skill competitions and
recognitions, 4.6 park construction, 4.7 talent awards."""

from __future__ import annotations

from contracts import facts as f
from services.eligibility.domain.entitlement import Basis, Line, Lines, flag_key, money_key
from services.eligibility.domain.ruleset import RuleSet
from services.eligibility.domain.worker_file import WorkerFile

ELIGIBLE_PARK_LEVELS = frozenset({"municipal", "provincial", "national"})


def _fixed(rules: RuleSet, name: str, day: str) -> tuple[int, tuple[tuple[str, str, str], ...]]:
    param = rules.params.at(name, day)
    assert isinstance(param.value, int)
    return param.value, ((param.name, str(param.value), param.since),)


def one_time(fact: f.AnyFact, rules: RuleSet) -> Lines:
    """Lines created by one approval fact (none for facts of other types)."""
    match fact:
        case f.JobStandardApproved():
            amount, params = _fixed(rules, "job_standard_fen", fact.approved_on)
            return {money_key("job_standard", fact.enterprise, None, fact.job_type, None): Line(amount, Basis(
                "Art. 6", f"job-type evaluation standard {fact.job_type} approved {fact.approved_on}",
                f"职业岗位评价规范（{fact.job_type}）通过评审", params, (fact.id,)))}
        case f.CompetitionListed():
            amount, params = _fixed(rules, "skill_competition_fen", fact.listed_on)
            return {money_key("skill_competition", fact.enterprise, None, fact.competition, None): Line(
                amount, Basis("Art. 5", f"competition {fact.competition} listed in the municipal catalogue "
                              f"{fact.listed_on}", "新职业技能竞赛列入市级竞赛目录", params, (fact.id,)))}
        case f.ParkRecognized():
            if fact.level not in ELIGIBLE_PARK_LEVELS or fact.established_on < rules.policy_start_date:
                return {}
            cap, params = _fixed(rules, "park_construction_cap_fen", fact.recognized_on)
            amount = min(fact.approved_amount_fen, cap)
            if amount <= 0:
                return {}
            return {money_key("park_construction", fact.park, None, None, None): Line(amount, Basis(
                "Art. 1", f"new {fact.level} park established {fact.established_on}: approved "
                f"{fact.approved_amount_fen} fen, cap {cap}",
                "新建市级以上平台人力资源服务产业园一次性建园补助",
                params, (fact.id,)))}
        case f.TalentAward():
            # The award carries no date of its own: the cap is the one in force when it was submitted, or
            # when the measures took effect for an award submitted before (RULES.md 4.7 sets no date rule).
            cap, params = _fixed(rules, "talent_cap_fen", max(fact.at_day, rules.policy_start_date))
            amount = min(fact.approved_amount_fen, cap)
            if amount <= 0:
                return {}
            return {money_key("talent", fact.enterprise, None, fact.award, None): Line(amount, Basis(
                "Art. 5",
                f"太湖人才计划 award {fact.award}: approved {fact.approved_amount_fen} fen, cap {cap}",
                "太湖人才计划跟奖跟补", params, (fact.id,)))}
    return {}


def recognitions(file: WorkerFile, rules: RuleSet) -> Lines:
    """4.5: the 无锡市技术能手 title for each award of a listed competition to the worker."""
    return {
        flag_key("recognition", "skill_competition", file.worker, file.worker, competition, None):
        Line(0, Basis(
            "Art. 5", f"prize winner of listed competition {competition}", "授予“无锡市技术能手”称号",
            (), (fact_id,)))
        for competition, fact_id in file.awards.items()
    }
