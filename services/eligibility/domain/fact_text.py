"""What a fact says, in English and Chinese, for the explanations of the decisions it causes.

A clawback or a revocation names the fact that ended the entitlement (its type, id and date, and what
it withdrew); these are the words. No identity number appears: a worker is never named here (the
decision's subject is), enterprises by their credit code.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts import facts as f

CATEGORY_ZH = {
    "employment_difficulty": "就业困难人员",
    "registered_unemployed": "失业人员",
    "graduate_unemployed": "离校2年内未就业高校毕业生",
}
PROGRAMME_ZH = {
    "employment_service": "就业创业服务补助",
    "social_insurance": "灵活就业社会保险补贴",
    "training": "线上职业培训补贴",
    "job_standard": "职业岗位评价规范补贴",
    "skill_competition": "新职业技能竞赛补贴",
    "park_construction": "人力资源服务产业园建园补助",
    "talent": "太湖人才计划跟奖跟补",
    "new_employment": "城镇新增就业统计",
}
KIND_ZH = {"extension": "延长享受期", "statistic": "新增就业统计", "recognition": "“无锡市技术能手”称号"}


@dataclass(frozen=True, slots=True)
class FactText:
    fact_id: str
    type: str
    day: str  # the date the fact is about (a since), else the day it was submitted
    en: str  # what it says
    zh: str

    def cite_en(self) -> str:
        return f"fact {self.fact_id} ({self.type}, {self.day}: {self.en})"

    def cite_zh(self) -> str:
        return f"事实 {self.fact_id}（{self.day} {self.zh}）"


def fact_text(fact: f.AnyFact) -> FactText:
    en, zh, day = _says(fact)
    return FactText(fact.id, fact.type, day or fact.at_day, en, zh)


def _says(fact: f.AnyFact) -> tuple[str, str, str | None]:
    """(English, Chinese, the date it is about when it has one)."""
    match fact:
        case f.CategoryRevoked():
            name = CATEGORY_ZH.get(fact.category, fact.category)
            return f"{fact.category} declaration revoked", f"撤销{name}认定", None
        case f.CategoryDeclared():
            name = CATEGORY_ZH.get(fact.category, fact.category)
            until = f" until {fact.until}" if fact.until else ""
            return (f"{fact.category} declared since {fact.since}{until}", f"声明为{name}，自{fact.since}",
                    fact.since)
        case f.ReportRetracted():
            return (f"report of {fact.month} through {fact.enterprise} retracted",
                    f"撤回{fact.enterprise} {fact.month}的收入报告", None)
        case f.ReportCorrected():
            return (f"report of {fact.month} through {fact.enterprise} corrected to {fact.income_fen} fen",
                    f"更正{fact.enterprise} {fact.month}的收入为{fact.income_fen}分", None)
        case f.MonthlyReport():
            return (f"income of {fact.month} through {fact.enterprise}: {fact.income_fen} fen",
                    f"{fact.month}经{fact.enterprise}取得收入{fact.income_fen}分", None)
        case f.ContributionRefunded():
            return f"contribution of {fact.month} refunded", f"退还{fact.month}社会保险个人缴费", None
        case f.ContributionPaid():
            return (f"contribution of {fact.month}: {fact.amount_fen} fen",
                    f"缴纳{fact.month}社会保险个人缴费{fact.amount_fen}分", None)
        case f.ResidenceChanged():
            return (f"residence {fact.residence} since {fact.since}",
                    f"自{fact.since}户籍/居住地变更为{fact.residence}", fact.since)
        case f.TrainingRetracted():
            return (f"training {fact.course} through {fact.enterprise} retracted",
                    f"撤回{fact.enterprise}的培训记录{fact.course}", None)
    return fact.type.replace("_", " "), fact.type, None
